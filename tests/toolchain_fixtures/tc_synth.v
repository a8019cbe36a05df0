// Toolchain fixture for yosys synth_xilinx: counter + registered 8-bit adder.
`default_nettype none
module tc_synth (
    input  wire       clk,
    input  wire       rst,
    input  wire [7:0] a,
    input  wire [7:0] b,
    output reg  [8:0] s,
    output reg  [7:0] cnt
);
    always @(posedge clk) begin
        if (rst) begin
            s   <= 9'd0;
            cnt <= 8'd0;
        end else begin
            s   <= {1'b0, a} + {1'b0, b};
            cnt <= cnt + 8'd1;
        end
    end
endmodule
`default_nettype wire
