// cf_rom: read-only memory initialised from a $readmemh file, registered read
// with enable (maps to block RAM or distributed RAM / LUTs).
// STYLE: 0 = let synthesis choose, 1 = block RAM, 2 = distributed (LUT) RAM,
// passed on as the ram_style attribute that Yosys and Vivado understand.
`default_nettype none
module cf_rom #(
    parameter W     = 8,
    parameter DEPTH = 4,
    parameter FILE  = "",
    parameter STYLE = 0
) (
    input  wire                                   clk,
    input  wire                                   en,
    input  wire [((DEPTH > 1) ? $clog2(DEPTH) : 1)-1:0] addr,
    output reg  [W-1:0]                           q
);
    // elaboration-time parameter checks (an unknown module stops every tool)
    generate
        if (!(W >= 1 && DEPTH >= 1)) begin : g_bad_size
            cf_rom_needs_W_and_DEPTH_at_least_1 u_bad ();
        end
        if (!(STYLE >= 0 && STYLE <= 2)) begin : g_bad_style
            cf_rom_needs_STYLE_0_to_2 u_bad ();
        end
    endgenerate

    generate
        if (STYLE == 1) begin : g_block
            (* ram_style = "block" *) reg [W-1:0] mem [0:DEPTH-1];
            initial begin
                if (FILE != "") $readmemh(FILE, mem);
            end
            always @(posedge clk) begin
                if (en) q <= mem[addr];
            end
        end else if (STYLE == 2) begin : g_dist
            (* ram_style = "distributed" *) reg [W-1:0] mem [0:DEPTH-1];
            initial begin
                if (FILE != "") $readmemh(FILE, mem);
            end
            always @(posedge clk) begin
                if (en) q <= mem[addr];
            end
        end else begin : g_auto
            reg [W-1:0] mem [0:DEPTH-1];
            initial begin
                if (FILE != "") $readmemh(FILE, mem);
            end
            always @(posedge clk) begin
                if (en) q <= mem[addr];
            end
        end
    endgenerate
endmodule
`default_nettype wire
