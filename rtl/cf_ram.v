// cf_ram: the writable counterpart of cf_rom for builds with run-time weights
// (docs/WEIGHTS.md): no initial contents; one synchronous write port (we, waddr,
// wdata), written by the weight loader (cf_wload) after start-up, and the same
// registered read with enable as cf_rom (en, addr, q). A simple dual-port RAM.
// STYLE: 0 = let synthesis choose, 1 = block RAM, 2 = distributed (LUT) RAM,
// 3 = UltraRAM (ram_style = "ultra": UltraScale+ parts; it has no initial
// contents, which is why UltraRAM weights need the weight port). Yosys (the `YOSYS`
// macro it defines) maps STYLE 3 as block RAM: the resource and timing estimates
// (generator/flows/synth.py, timing.py) run synth_xilinx -family xc7, which has no
// UltraRAM and refuses ram_style "ultra"; Vivado sees "ultra".
`default_nettype none
module cf_ram #(
    parameter W     = 8,
    parameter DEPTH = 4,
    parameter STYLE = 0
) (
    input  wire                                   clk,
    input  wire                                   en,
    input  wire [((DEPTH > 1) ? $clog2(DEPTH) : 1)-1:0] addr,
    output reg  [W-1:0]                           q,
    input  wire                                   we,
    input  wire [((DEPTH > 1) ? $clog2(DEPTH) : 1)-1:0] waddr,
    input  wire [W-1:0]                           wdata
);
    // elaboration-time parameter checks (an unknown module stops every tool)
    generate
        if (!(W >= 1 && DEPTH >= 1)) begin : g_bad_size
            cf_ram_needs_W_and_DEPTH_at_least_1 u_bad ();
        end
        if (!(STYLE >= 0 && STYLE <= 3)) begin : g_bad_style
            cf_ram_needs_STYLE_0_to_3 u_bad ();
        end
    endgenerate

    generate
        if (STYLE == 1) begin : g_block
            (* ram_style = "block" *) reg [W-1:0] mem [0:DEPTH-1];
            always @(posedge clk) begin
                if (we) mem[waddr] <= wdata;
                if (en) q <= mem[addr];
            end
        end else if (STYLE == 2) begin : g_dist
            (* ram_style = "distributed" *) reg [W-1:0] mem [0:DEPTH-1];
            always @(posedge clk) begin
                if (we) mem[waddr] <= wdata;
                if (en) q <= mem[addr];
            end
        end else if (STYLE == 3) begin : g_ultra
`ifdef YOSYS
            (* ram_style = "block" *) reg [W-1:0] mem [0:DEPTH-1];
`else
            (* ram_style = "ultra" *) reg [W-1:0] mem [0:DEPTH-1];
`endif
            always @(posedge clk) begin
                if (we) mem[waddr] <= wdata;
                if (en) q <= mem[addr];
            end
        end else begin : g_auto
            reg [W-1:0] mem [0:DEPTH-1];
            always @(posedge clk) begin
                if (we) mem[waddr] <= wdata;
                if (en) q <= mem[addr];
            end
        end
    endgenerate
endmodule
`default_nettype wire
