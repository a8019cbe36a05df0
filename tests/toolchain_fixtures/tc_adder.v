// Toolchain fixture: registered adder with a valid/ready handshake on both sides.
`default_nettype none
module tc_adder #(
    parameter integer W = 8
) (
    input  wire         clk,
    input  wire         rst,
    input  wire [W-1:0] a,
    input  wire [W-1:0] b,
    input  wire         in_valid,
    output wire         in_ready,
    output reg  [W:0]   sum,
    output reg          out_valid,
    input  wire         out_ready
);
    assign in_ready = !out_valid || out_ready;

    always @(posedge clk) begin
        if (rst) begin
            out_valid <= 1'b0;
            sum       <= {(W + 1){1'b0}};
        end else if (in_ready) begin
            out_valid <= in_valid;
            if (in_valid) sum <= {1'b0, a} + {1'b0, b};
        end
    end
endmodule
`default_nettype wire
