// Toolchain fixture: lint must FAIL on this (unused input bit, unused signal).
`default_nettype none
module tc_unused (
    input  wire       clk,
    input  wire [3:0] d,
    output reg  [1:0] q
);
    wire [3:0] spare = d ^ 4'hA;
    always @(posedge clk) q <= d[1:0];
endmodule
`default_nettype wire
