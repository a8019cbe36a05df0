// cf_axi_wread: AXI4 read master that streams a layer's weight image from DRAM, pass after
// pass, and unpacks it into weight words (generator/hw/dram.py owns the layout and the model).
//
// The image is NB beats of DW bits from `base` (little-endian bytes, beat k at base + k*DW/8):
//   WW >= DW: word i is beats [i*NBW, (i+1)*NBW), NBW = ceil(WW/DW), least significant
//             beat first (the top of the last beat is padding);
//   WW <  DW: beat k holds words k*WPB .. k*WPB+WPB-1, WPB = floor(DW/WW), word j of the
//             beat at [j*WW +: WW] (the last beat of a pass may hold fewer).
// After the NW-th word the next pass starts at `base` again (sampled there and at reset):
// the read master loops for as long as the matrix unit takes words, one pass per batch.
//
// Bursts: INCR, BURST beats (the last of a pass shorter), one ID, AXI4 (arlen 8 bits; the
// Zynq-7000 HP ports are AXI3: BURST <= 16). `base` must be aligned to BURST*DW/8 bytes so
// that no burst crosses a 4 KB boundary (the full bursts then start on multiples of their size).
// Flow control: a burst is requested only when the raw FIFO (FD beats) has room for it and
// for every beat still in flight, so rready never waits and up to FD/BURST bursts hide the
// read latency. rresp SLVERR/DECERR sets the sticky `err` output (the data is used as read).
// valid/ready everywhere; m_valid, m_data come from the word FIFO's registers.
`default_nettype none
module cf_axi_wread #(
    parameter AW    = 32,     // AXI address bits
    parameter DW    = 64,     // AXI data bits: a power of 2, 8 .. 1024
    parameter WW    = 64,     // weight word bits (PE * SIMD)
    parameter NW    = 16,     // words per pass
    parameter BURST = 16,     // beats per burst, 1 .. 256, BURST * DW / 8 <= 4096
    parameter FD    = 64      // raw beat FIFO depth: a power of 2 >= BURST
) (
    input  wire          clk,
    input  wire          rst,
    input  wire [AW-1:0] base,
    // AXI4 read address channel
    output wire [AW-1:0] m_axi_araddr,
    output wire [7:0]    m_axi_arlen,
    output wire [2:0]    m_axi_arsize,
    output wire [1:0]    m_axi_arburst,
    output wire [3:0]    m_axi_arcache,
    output wire [2:0]    m_axi_arprot,
    output wire [0:0]    m_axi_arid,
    output wire          m_axi_arvalid,
    input  wire          m_axi_arready,
    // AXI4 read data channel
    input  wire [DW-1:0] m_axi_rdata,
    input  wire [1:0]    m_axi_rresp,
    input  wire          m_axi_rlast,
    input  wire [0:0]    m_axi_rid,
    input  wire          m_axi_rvalid,
    output wire          m_axi_rready,
    // weight words
    output wire          m_valid,
    input  wire          m_ready,
    output wire [WW-1:0] m_data,
    output reg           err
);
    localparam WW1  = (WW > 0) ? WW : 1;
    localparam DW1  = (DW >= 8) ? DW : 8;
    localparam NBW  = (WW1 + DW1 - 1) / DW1;             // beats per word (WW >= DW)
    localparam WPB  = (WW1 < DW1) ? DW1 / WW1 : 1;      // words per beat (WW < DW)
    localparam NW1  = (NW > 0) ? NW : 1;
    localparam NB   = (WW1 >= DW1) ? NW1 * NBW : (NW1 + WPB - 1) / WPB;   // beats per pass
    localparam LASTN = NW1 - (NB - 1) * WPB;            // words in the last beat (WW < DW)
    localparam BB   = DW1 / 8;                          // bytes per beat
    localparam SZ   = $clog2(BB);
    localparam LB   = $clog2(NB + 1);
    localparam LQ   = (LB > 9) ? LB : 9;                // beats-left counter, holds BURST
    localparam FCW  = $clog2(FD + 1);
    localparam QW   = ((FCW > LQ) ? FCW : LQ) + 2;      // room arithmetic

    /* verilator lint_off WIDTHTRUNC */
    localparam [LQ-1:0] NB_L    = NB;
    localparam [LQ-1:0] BURST_L = BURST;
    localparam [QW-1:0] FD_Q    = FD;
    localparam [AW-1:0] STEP    = BURST * BB;           // bytes per full burst
    localparam [2:0]    SZ_3    = SZ;
    /* verilator lint_on WIDTHTRUNC */

    // elaboration-time parameter checks (an unknown module stops every tool)
    generate
        if (!(AW >= 16 && AW <= 64)) begin : g_bad_aw
            cf_axi_wread_needs_AW_16_to_64 u_bad ();
        end
        if (!(DW >= 8 && DW <= 1024 && (DW & (DW - 1)) == 0)) begin : g_bad_dw
            cf_axi_wread_needs_DW_a_power_of_2_from_8_to_1024 u_bad ();
        end
        if (!(WW >= 1 && NW >= 1)) begin : g_bad_words
            cf_axi_wread_needs_WW_and_NW_at_least_1 u_bad ();
        end
        if (!(BURST >= 1 && BURST <= 256 && BURST * DW1 / 8 <= 4096)) begin : g_bad_burst
            cf_axi_wread_needs_BURST_1_to_256_within_4KB u_bad ();
        end
        if (!(FD >= BURST && FD >= 2 && (FD & (FD - 1)) == 0)) begin : g_bad_fd
            cf_axi_wread_needs_FD_a_power_of_2_at_least_BURST_and_2 u_bad ();
        end
    endgenerate

    // ------------------------------------------------------------ read requests
    wire [FCW-1:0] rcount;              // beats in the raw FIFO
    reg  [QW-1:0]  outst;               // beats requested, not yet received
    reg  [AW-1:0]  addr;
    reg  [LQ-1:0]  left;                // beats of this pass not yet requested
    reg            arv;
    reg  [AW-1:0]  ara;
    reg  [7:0]     arl;
    wire [LQ-1:0]  len = (left < BURST_L) ? left : BURST_L;
    wire [QW-1:0]  len_q = {{(QW-LQ){1'b0}}, len};
    wire [QW-1:0]  need = {{(QW-FCW){1'b0}}, rcount} + outst + len_q;
    wire           req = !arv && (need <= FD_Q);
    wire           rbeat = m_axi_rvalid && m_axi_rready;

    assign m_axi_araddr  = ara;
    assign m_axi_arlen   = arl;
    assign m_axi_arsize  = SZ_3;
    assign m_axi_arburst = 2'b01;       // INCR
    assign m_axi_arcache = 4'b0011;     // normal, bufferable (HP port upsizing allowed)
    assign m_axi_arprot  = 3'b000;
    assign m_axi_arid    = 1'b0;
    assign m_axi_arvalid = arv;

    always @(posedge clk) begin
        if (req) begin
            ara <= addr;
            arl <= len[7:0] - 8'd1;     // len is 1 .. BURST <= 256
        end
    end
    always @(posedge clk) begin
        if (rst) begin
            arv   <= 1'b0;
            addr  <= base;
            left  <= NB_L;
            outst <= {QW{1'b0}};
            err   <= 1'b0;
        end else begin
            if (req) begin
                arv <= 1'b1;
                if (left == len) begin  // the pass's last burst: the next pass from base
                    addr <= base;
                    left <= NB_L;
                end else begin          // a full burst
                    addr <= addr + STEP;
                    left <= left - len;
                end
            end else if (arv && m_axi_arready) begin
                arv <= 1'b0;
            end
            outst <= outst + (req ? len_q : {QW{1'b0}}) - {{(QW-1){1'b0}}, rbeat};
            if (rbeat && m_axi_rresp[1]) err <= 1'b1;
        end
    end

    // ------------------------------------------------------------ raw beats
    wire          raw_valid;
    wire          raw_pop;
    wire [DW-1:0] raw_data;
    cf_fifo #(.W(DW), .DEPTH(FD)) u_raw (
        .clk(clk), .rst(rst),
        .s_valid(m_axi_rvalid), .s_ready(m_axi_rready), .s_data(m_axi_rdata),
        .m_valid(raw_valid), .m_ready(raw_pop), .m_data(raw_data),
        .count(rcount));

    // ------------------------------------------------------------ unpacking into words
    wire          word_ready;           // the word FIFO has room (a register)
    wire          push;
    wire [WW-1:0] word;
    genvar gi;
    generate
        if (WW1 >= DW1) begin : g_span
            // a word spans NBW beats: shift them in from the top, the last one completes it
            localparam BCW = (NBW > 1) ? $clog2(NBW) : 1;
            /* verilator lint_off WIDTHTRUNC */
            localparam [BCW-1:0] NBW_LAST = NBW - 1;
            /* verilator lint_on WIDTHTRUNC */
            reg [BCW-1:0] bcnt;
            wire last_beat = (bcnt == NBW_LAST);
            assign raw_pop = raw_valid && (!last_beat || word_ready);
            assign push = raw_pop && last_beat;
            always @(posedge clk) begin
                if (rst) bcnt <= {BCW{1'b0}};
                else if (raw_pop) bcnt <= last_beat ? {BCW{1'b0}} : bcnt + 1'b1;
            end
            if (NBW > 1) begin : g_shift
                reg [(NBW-1)*DW-1:0] sreg;
                wire [NBW*DW-1:0] full = {raw_data, sreg};
                always @(posedge clk) begin
                    if (raw_pop) sreg <= full[NBW*DW-1:DW];
                end
                assign word = full[WW-1:0];
                if (NBW*DW > WW) begin : g_pad
                    wire unused_pad = &{1'b0, full[NBW*DW-1:WW]};
                end
            end else begin : g_one
                assign word = raw_data[WW-1:0];
                if (DW > WW) begin : g_pad
                    wire unused_pad = &{1'b0, raw_data[DW-1:WW]};
                end
            end
        end else begin : g_share
            // WPB words per beat: one per cycle, the beat popped after its last word
            localparam WIW = (WPB > 1) ? $clog2(WPB) : 1;
            localparam BIW = (NB > 1) ? $clog2(NB) : 1;
            /* verilator lint_off WIDTHTRUNC */
            localparam [WIW-1:0] WPB_LAST  = WPB - 1;
            localparam [WIW-1:0] LASTN_END = LASTN - 1;
            localparam [BIW-1:0] NB_LAST   = NB - 1;
            /* verilator lint_on WIDTHTRUNC */
            reg [WIW-1:0] wi;
            reg [BIW-1:0] bi;
            wire [WIW-1:0] wend = (bi == NB_LAST) ? LASTN_END : WPB_LAST;
            wire emit = raw_valid && word_ready;
            assign raw_pop = emit && (wi == wend);
            assign push = emit;
            wire [WW-1:0] lane [0:WPB-1];
            for (gi = 0; gi < WPB; gi = gi + 1) begin : g_lane
                assign lane[gi] = raw_data[gi*WW +: WW];
            end
            assign word = lane[wi];
            if (DW > WPB*WW) begin : g_pad
                wire unused_pad = &{1'b0, raw_data[DW-1:WPB*WW]};
            end
            always @(posedge clk) begin
                if (rst) begin
                    wi <= {WIW{1'b0}};
                    bi <= {BIW{1'b0}};
                end else if (emit) begin
                    wi <= raw_pop ? {WIW{1'b0}} : wi + 1'b1;
                    if (raw_pop) bi <= (bi == NB_LAST) ? {BIW{1'b0}} : bi + 1'b1;
                end
            end
        end
    endgenerate

    wire [1:0] wcount;
    cf_fifo #(.W(WW), .DEPTH(2)) u_words (
        .clk(clk), .rst(rst),
        .s_valid(push), .s_ready(word_ready), .s_data(word),
        .m_valid(m_valid), .m_ready(m_ready), .m_data(m_data),
        .count(wcount));
    wire unused = &{1'b0, wcount, m_axi_rlast, m_axi_rid, m_axi_rresp[0]};
endmodule
`default_nettype wire
