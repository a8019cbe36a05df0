// cf_add: W-bit adder kept as its own module (keep_hierarchy), so Yosys maps it to one
// carry chain (1 LUT per bit) instead of merging a whole adder tree into one $macc and
// a LUT compressor tree (about 2x the LUTs). Used by cf_mvu's dsp2 lane trees.
`default_nettype none
(* keep_hierarchy *)
module cf_add #(
    parameter W = 18
) (
    input  wire [W-1:0] a,
    input  wire [W-1:0] b,
    output wire [W-1:0] y
);
    // elaboration-time parameter checks (an unknown module stops every tool)
    generate
        if (!(W >= 1)) begin : g_bad_w
            cf_add_needs_W_at_least_1 u_bad ();
        end
    endgenerate
    assign y = a + b;
endmodule
`default_nettype wire
