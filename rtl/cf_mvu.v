// cf_mvu: matrix-vector-activation unit folded by PE and SIMD.
//
// Input : SF = KD/SIMD beats per output-channel fold, NF = CO/PE folds per
//         output pixel, fold-major: beat (nf, sf) carries vector elements
//         [sf*SIMD, (sf+1)*SIMD) (element i at [i*IB +: IB]); cf_swg emits
//         this order. Weights of output channel o = nf*PE + p for that beat
//         are in WMEM word nf*SF + sf, lane p at [p*SIMD*WB +: SIMD*WB].
// MATRIX 0 (xnor): IB = WB = 1; each PE counts matches popcount(~(x ^ w)),
//         summed over the SF beats: pc in [0, KD]; acc = 2*pc - KD.
// MATRIX 1 (int8): IB = 8 unsigned pixels, WB = 8 two's complement weights;
//         acc = sum x*w (AW-bit signed).
// ACT 0 (threshold): per channel a signed TW-bit threshold t and a direction
//         bit d: out = d ? (v >= t) : (v <= t), where v = pc for xnor (the
//         generator rewrites thresholds on acc into the pc domain, exact) and
//         v = acc for int8. OB = 1.
// ACT 1 (relu_offset): per channel a signed TW-bit offset and a sign bit s
//         (1 = +1): out = max(0, (s ? acc : -acc) * 2^FRAC + offset), OB bits.
// PMEM word nf holds the PE (value, flag) pairs of fold nf, lane p at
//         [p*(TW+1) +: TW+1] = {flag, value}.
// Output: one beat per output pixel, channel o at [o*OB +: OB].
//
// Pipeline: A (accept, weight/param read) -> B (dot products) ->
// C (accumulate) -> D (activation, assembly) -> output FIFO. The stages
// never stall: the beat that completes a pixel is accepted only when the
// output FIFO has a free slot counting pixels in flight (credits), so
// s_ready never depends on m_ready.
`default_nettype none
module cf_mvu #(
    parameter MATRIX = 0,
    parameter SIMD   = 4,
    parameter PE     = 2,
    parameter KD     = 8,
    parameter CO     = 4,
    parameter ACT    = 0,
    parameter OB     = 1,
    parameter AW     = 8,
    parameter TW     = 8,
    parameter FRAC   = 0,
    parameter FD     = 4,
    parameter WFILE  = "",
    parameter WSTYLE = 0,
    parameter PFILE  = ""
) (
    input  wire                         clk,
    input  wire                         rst,
    input  wire                         s_valid,
    output wire                         s_ready,
    input  wire [SIMD*(MATRIX ? 8 : 1)-1:0] s_data,
    output wire                         m_valid,
    input  wire                         m_ready,
    output wire [CO*OB-1:0]             m_data
);
    localparam IB   = MATRIX ? 8 : 1;
    localparam WB   = MATRIX ? 8 : 1;
    localparam SF   = KD / SIMD;
    localparam NF   = CO / PE;
    localparam NW   = NF * SF;                 // weight words
    localparam WAW  = (NW > 1) ? $clog2(NW) : 1;
    localparam NFW  = (NF > 1) ? $clog2(NF) : 1;
    localparam SFW  = (SF > 1) ? $clog2(SF) : 1;
    localparam PRW  = TW + 1;                  // param lane width
    localparam LW   = SIMD * WB;               // weight lane width
    // per-beat dot width and accumulator width
    localparam PCW  = $clog2(SIMD + 1);
    localparam DW   = MATRIX ? (17 + $clog2(SIMD + 1)) : PCW;
    // accumulator: one bit more than needed keeps every extension count >= 1
    localparam CW   = (MATRIX ? ((AW > DW) ? AW : DW) : $clog2(KD + 1)) + 1;
    localparam OUTW = CO * OB;
    localparam FCW  = $clog2(FD + 1);
    // relu_offset evaluation width
    localparam SAW  = CW + 2;                  // signed acc, room for 2*pc and negation
    localparam EW   = ((SAW + FRAC > TW) ? SAW + FRAC : TW) + 2;

    /* verilator lint_off WIDTHTRUNC */
    localparam [WAW-1:0] NW_LAST = NW - 1;
    localparam [SFW-1:0] SF_LAST = SF - 1;
    localparam [NFW-1:0] NF_LAST = NF - 1;
    localparam [7:0]     FDS8    = FD;
    /* verilator lint_on WIDTHTRUNC */

    // ------------------------------------------------------------ memories
    reg [PE*PRW-1:0] pmem [0:NF-1];
    initial begin
        if (PFILE != "") $readmemh(PFILE, pmem);
    end

    // ------------------------------------------------------------ stage A
    reg [WAW-1:0] ia;
    reg [SFW-1:0] sfc;
    reg [NFW-1:0] nfc;
    wire next_end = (ia == NW_LAST);
    wire [FCW-1:0] fcount;
    reg  [2:0]     inflight;          // pixels accepted but not yet in the FIFO
    wire [7:0] occ = {{(8-FCW){1'b0}}, fcount} + {5'd0, inflight};
    wire credit = occ < FDS8;
    assign s_ready = !next_end || credit;
    wire acc_beat = s_valid && s_ready;

    reg              va, firsta, lasta, enda;
    reg [SIMD*IB-1:0] xa;
    wire [PE*LW-1:0] wa;               // weight word of the accepted beat (cf_rom)
    reg [PE*PRW-1:0] pa;
    always @(posedge clk) begin
        if (acc_beat) begin
            xa <= s_data;
        end
        if (acc_beat && sfc == {SFW{1'b0}}) pa <= pmem[nfc];
    end
    always @(posedge clk) begin
        if (rst) begin
            ia <= {WAW{1'b0}}; sfc <= {SFW{1'b0}}; nfc <= {NFW{1'b0}};
            va <= 1'b0; firsta <= 1'b0; lasta <= 1'b0; enda <= 1'b0;
        end else begin
            va <= acc_beat;
            if (acc_beat) begin
                firsta <= (sfc == {SFW{1'b0}});
                lasta  <= (sfc == SF_LAST);
                enda   <= next_end;
                ia  <= next_end ? {WAW{1'b0}} : ia + 1'b1;
                if (sfc == SF_LAST) begin
                    sfc <= {SFW{1'b0}};
                    nfc <= (nfc == NF_LAST) ? {NFW{1'b0}} : nfc + 1'b1;
                end else begin
                    sfc <= sfc + 1'b1;
                end
            end
        end
    end

    cf_rom #(.W(PE*LW), .DEPTH(NW), .FILE(WFILE), .STYLE(WSTYLE)) u_wrom (
        .clk(clk), .en(acc_beat), .addr(ia), .q(wa));

    // ------------------------------------------------------------ stage B
    reg [PE*DW-1:0] db;
    reg             vb, firstb, lastb, endb;
    reg [PE*PRW-1:0] pb;
    wire [PE*DW-1:0] dot;
    genvar gp;
    generate
        for (gp = 0; gp < PE; gp = gp + 1) begin : g_dot
            if (MATRIX == 0) begin : g_xnor
                wire [SIMD-1:0] m = ~(xa ^ wa[gp*LW +: LW]);
                wire [31:0] pc = $countones(m);
                assign dot[gp*DW +: DW] = pc[DW-1:0];
                wire unused_pc = &{1'b0, pc[31:DW]};
            end else begin : g_int8
                reg signed [DW-1:0] s;
                integer i;
                always @* begin
                    s = {DW{1'b0}};
                    for (i = 0; i < SIMD; i = i + 1)
                        s = s + $signed({1'b0, xa[i*8 +: 8]}) * $signed(wa[gp*LW + i*8 +: 8]);
                end
                assign dot[gp*DW +: DW] = s;
            end
        end
    endgenerate
    always @(posedge clk) begin
        db <= dot;
        pb <= pa;
        firstb <= firsta; lastb <= lasta; endb <= enda;
    end
    always @(posedge clk) begin
        if (rst) vb <= 1'b0;
        else     vb <= va;
    end

    // ------------------------------------------------------------ stage C
    reg  [PE*CW-1:0] accr;          // running sums
    reg  [PE*CW-1:0] fc;            // completed sums
    reg              vc, endc;
    reg  [PE*PRW-1:0] pc_q;
    wire [PE*CW-1:0] sum;
    generate
        for (gp = 0; gp < PE; gp = gp + 1) begin : g_acc
            wire [CW-1:0] prev = firstb ? {CW{1'b0}} : accr[gp*CW +: CW];
            if (MATRIX == 0) begin : g_u
                assign sum[gp*CW +: CW] = prev + {{(CW-DW){1'b0}}, db[gp*DW +: DW]};
            end else begin : g_s
                assign sum[gp*CW +: CW] = prev + {{(CW-DW){db[gp*DW + DW-1]}}, db[gp*DW +: DW]};
            end
        end
    endgenerate
    always @(posedge clk) begin
        if (vb) accr <= sum;
        if (vb && lastb) begin
            fc   <= sum;
            pc_q <= pb;
            endc <= endb;
        end
    end
    always @(posedge clk) begin
        if (rst) vc <= 1'b0;
        else     vc <= vb && lastb;
    end

    // ------------------------------------------------------------ stage D
    wire [PE*OB-1:0] act;
    generate
        for (gp = 0; gp < PE; gp = gp + 1) begin : g_act
            wire [CW-1:0] a = fc[gp*CW +: CW];
            wire signed [TW-1:0] pv = pc_q[gp*PRW +: TW];
            wire pflag = pc_q[gp*PRW + TW];
            if (ACT == 0) begin : g_thr
                // compare in max(CW, TW) + 1 bits, signed
                localparam CMW = ((CW > TW) ? CW : TW) + 1;
                wire signed [CMW-1:0] v = MATRIX ? $signed({{(CMW-CW){a[CW-1]}}, a})
                                                 : $signed({{(CMW-CW){1'b0}}, a});
                wire signed [CMW-1:0] t = $signed({{(CMW-TW){pv[TW-1]}}, pv});
                assign act[gp*OB +: OB] = pflag ? (v >= t) : (v <= t);
            end else begin : g_relu
                wire signed [EW-1:0] accs;
                if (MATRIX == 0) begin : g_xa
                    // acc = 2*pc - KD
                    /* verilator lint_off WIDTHTRUNC */
                    localparam signed [EW-1:0] KDS = KD;
                    /* verilator lint_on WIDTHTRUNC */
                    assign accs = $signed({{(EW-CW-1){1'b0}}, a, 1'b0}) - KDS;
                end else begin : g_ia
                    assign accs = $signed({{(EW-CW){a[CW-1]}}, a});
                end
                wire signed [EW-1:0] sgn = pflag ? accs : -accs;
                wire signed [EW-1:0] val = (sgn <<< FRAC) + $signed({{(EW-TW){pv[TW-1]}}, pv});
                if (OB < EW - 1) begin : g_trunc
                    // the generator sizes OB to hold every reachable value
                    assign act[gp*OB +: OB] = val[EW-1] ? {OB{1'b0}} : val[OB-1:0];
                    wire unused_val = &{1'b0, val[EW-2:OB]};
                end else if (OB == EW - 1) begin : g_fit
                    assign act[gp*OB +: OB] = val[EW-1] ? {OB{1'b0}} : val[EW-2:0];
                end else begin : g_ext
                    assign act[gp*OB +: OB] = val[EW-1] ? {OB{1'b0}}
                                            : {{(OB-EW+1){1'b0}}, val[EW-2:0]};
                end
            end
        end
    endgenerate

    // Folds are shifted in from the top: after NF of them fold 0 is at the
    // bottom. asmb keeps the NF-1 most recent folds.
    wire [OUTW-1:0] asm_next;
    generate
        if (NF == 1) begin : g_one
            assign asm_next = act;
        end else begin : g_many
            reg [OUTW-PE*OB-1:0] asmb;
            assign asm_next = {act, asmb};
            always @(posedge clk) begin
                if (vc) asmb <= asm_next[OUTW-1:PE*OB];
            end
        end
    endgenerate
    wire push = vc && endc;

    always @(posedge clk) begin
        if (rst) inflight <= 3'd0;
        else inflight <= inflight + ((acc_beat && next_end) ? 3'd1 : 3'd0) - (push ? 3'd1 : 3'd0);
    end

    wire fifo_s_ready;   // always 1 on push: guaranteed by the credit check
    cf_fifo #(.W(OUTW), .DEPTH(FD)) u_out (
        .clk(clk), .rst(rst),
        .s_valid(push), .s_ready(fifo_s_ready), .s_data(asm_next),
        .m_valid(m_valid), .m_ready(m_ready), .m_data(m_data),
        .count(fcount));
    wire unused = &{1'b0, fifo_s_ready};
endmodule
`default_nettype wire
