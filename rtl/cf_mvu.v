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
// MULT (int8 only): 0 = one product per DSP48 (acc = sum x*w); 1 = dsp2: two
//         products per DSP48. Every lane computes acc' = sum (x-128)*w (x-128 =
//         x with its MSB flipped, read as signed: free); the generator folds the
//         per-channel constant 128*sum(w) into the parameters (threshold /
//         relu offset), so acc' is compared as acc is. Lanes 2j (lo) and 2j+1
//         (hi) share the pixel: one DSP computes (x-128) * (w_lo + w_hi*2^17)
//         with the 25-bit A port = {h, sign-extended w_lo} where the weight ROM
//         holds h = w_hi - (w_lo < 0) in lane 2j+1 (no adder). G = DG (<= 4) products
//         are summed per pair in the DSP cascade (|sum| <= 4*128*127 < 2^16
//         keeps the lanes separable: lo = P[16:0] signed, hi = P[33:17] +
//         P[16]); an adder tree adds the SIMD/G group sums of each lane (one
//         extra pipeline stage). An odd last lane uses plain products.
//         Weights must lie in [-127, 127].
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
// PIPE (timing, chosen from the target clock by generator/hw/pipeline.py): 0 = as below;
//         1 = one more register stage after the weight / parameter read (the block RAM
//         output register: its 2.45 ns clock-to-out no longer starts the dot product);
//         2 = 1 plus, for xnor, the popcount split into registered partial counts of
//         PCH bits each (summed in the next stage). Every stage delays the whole beat
//         (data, valid, first/last/end, parameters): same results, PIPE more cycles
//         of latency, the same rate.
// WRT (run-time weights, docs/WEIGHTS.md): 0 = the weight and parameter memories are
//         ROMs initialised from WFILE / PFILE (the wr_* ports are unused: tie them to 0);
//         1 = RAMs without initial contents written through wr_*: wr_en[0] writes
//         weight word wr_addr, wr_en[1] parameter word wr_addr, from the low bits of
//         wr_data (LA >= both address widths, LD >= both word widths). WSTYLE 3 puts
//         the weights in UltraRAM (WRT 1 only).
// Pipeline: A (accept, weight/param read) -> [R (read register, PIPE >= 1)] ->
// [P (partial popcounts, PIPE 2)] -> [B1 (dsp2 group sums)] -> B (dot products) ->
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
    parameter PFILE  = "",
    parameter MULT   = 0,
    parameter PIPE   = 0,
    parameter PCH    = 32,
    parameter DG     = 4,
    parameter WRT    = 0,
    parameter LA     = 1,
    parameter LD     = 1
) (
    input  wire                         clk,
    input  wire                         rst,
    input  wire                         s_valid,
    output wire                         s_ready,
    input  wire [SIMD*(MATRIX ? 8 : 1)-1:0] s_data,
    output wire                         m_valid,
    input  wire                         m_ready,
    output wire [CO*OB-1:0]             m_data,
    input  wire [1:0]                   wr_en,      // WRT 1: {params, weights}
    input  wire [LA-1:0]                wr_addr,
    input  wire [LD-1:0]                wr_data
);
    localparam IB   = MATRIX ? 8 : 1;
    localparam WB   = MATRIX ? 8 : 1;
    // divisors kept >= 1 (the checks below refuse smaller values): a refused instance
    // still elaborates far enough to name its rule
    localparam SIMD1 = (SIMD > 0) ? SIMD : 1;
    localparam PE1   = (PE > 0) ? PE : 1;
    localparam SF   = KD / SIMD1;
    localparam NF   = CO / PE1;
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

    // elaboration-time parameter checks (an unknown module stops every tool)
    generate
        if (!(MATRIX == 0 || MATRIX == 1)) begin : g_bad_matrix
            cf_mvu_needs_MATRIX_0_or_1 u_bad ();
        end
        if (!(KD >= 1 && CO >= 1 && OB >= 1 && AW >= 1 && TW >= 1 && FRAC >= 0)) begin : g_bad_size
            cf_mvu_needs_KD_CO_OB_AW_TW_at_least_1_and_FRAC_at_least_0 u_bad ();
        end
        if (!(SIMD >= 1 && KD % SIMD == 0)) begin : g_bad_simd
            cf_mvu_needs_SIMD_dividing_KD u_bad ();
        end
        if (!(PE >= 1 && CO % PE == 0)) begin : g_bad_pe
            cf_mvu_needs_PE_dividing_CO u_bad ();
        end
        if (!((ACT == 0 && OB == 1) || ACT == 1)) begin : g_bad_act
            cf_mvu_needs_ACT_0_with_OB_1_or_ACT_1 u_bad ();
        end
        if (!(MULT == 0 || (MULT == 1 && MATRIX == 1))) begin : g_bad_mult
            cf_mvu_needs_MULT_0_or_MULT_1_with_MATRIX_1 u_bad ();
        end
        if (WRT != 1 && !(WSTYLE >= 0 && WSTYLE <= 2)) begin : g_bad_wstyle
            cf_mvu_needs_WSTYLE_0_to_2 u_bad ();
        end
        if (WRT == 1 && !(WSTYLE >= 0 && WSTYLE <= 3)) begin : g_bad_wstyle_wrt
            cf_mvu_needs_WSTYLE_0_to_3_with_WRT_1 u_bad ();
        end
        if (!(WRT == 0 || (WRT == 1 && LA >= WAW && LA >= NFW && LD >= PE*LW && LD >= PE*PRW))) begin : g_bad_wrt
            cf_mvu_needs_WRT_0_or_1_with_LA_LD_holding_the_memories u_bad ();
        end
        if (!(PIPE >= 0 && PIPE <= 2 && PCH >= 1)) begin : g_bad_pipe
            cf_mvu_needs_PIPE_0_to_2_and_PCH_at_least_1 u_bad ();
        end
        if (!(DG >= 1 && DG <= 4)) begin : g_bad_dg
            cf_mvu_needs_DG_1_to_4 u_bad ();
        end
        if (!(FD >= 1 && FD <= 128 && (FD & (FD - 1)) == 0)) begin : g_bad_fd
            cf_mvu_needs_FD_1_to_128_a_power_of_2 u_bad ();
        end
    endgenerate

    // ------------------------------------------------------------ memories
    reg [PE*PRW-1:0] pmem [0:NF-1];
    generate
        if (WRT == 1) begin : g_pwrite
            always @(posedge clk) begin
                if (wr_en[1]) pmem[wr_addr[NFW-1:0]] <= wr_data[PE*PRW-1:0];
            end
        end else begin : g_pinit
            initial begin
                if (PFILE != "") $readmemh(PFILE, pmem);
            end
        end
    endgenerate
    wire unused_wr = &{1'b0, wr_en, wr_addr, wr_data};

    // ------------------------------------------------------------ stage A
    reg [WAW-1:0] ia;
    reg [SFW-1:0] sfc;
    reg [NFW-1:0] nfc;
    wire next_end = (ia == NW_LAST);
    wire [FCW-1:0] fcount;
    reg  [3:0]     inflight;          // pixels accepted but not yet in the FIFO
    wire [7:0] occ = {{(8-FCW){1'b0}}, fcount} + {4'd0, inflight};
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

    generate
        if (WRT == 1) begin : g_wram
            cf_ram #(.W(PE*LW), .DEPTH(NW), .STYLE(WSTYLE)) u_wram (
                .clk(clk), .en(acc_beat), .addr(ia), .q(wa),
                .we(wr_en[0]), .waddr(wr_addr[WAW-1:0]), .wdata(wr_data[PE*LW-1:0]));
        end else begin : g_wrom
            cf_rom #(.W(PE*LW), .DEPTH(NW), .FILE(WFILE), .STYLE(WSTYLE)) u_wrom (
                .clk(clk), .en(acc_beat), .addr(ia), .q(wa));
        end
    endgenerate

    // ------------------------------------------------------------ stage R (PIPE >= 1)
    // the stage-A beat as the dot product sees it: registered once more when PIPE >= 1
    wire              vr, firstr, lastr, endr;
    wire [SIMD*IB-1:0] xr;
    wire [PE*LW-1:0]  wr;
    wire [PE*PRW-1:0] pr;
    generate
        if (PIPE >= 1) begin : g_rreg
            reg              v_q, first_q, last_q, end_q;
            reg [SIMD*IB-1:0] x_q;
            reg [PE*LW-1:0]  w_q;
            reg [PE*PRW-1:0] p_q;
            always @(posedge clk) begin
                x_q <= xa; w_q <= wa; p_q <= pa;
                first_q <= firsta; last_q <= lasta; end_q <= enda;
            end
            always @(posedge clk) begin
                if (rst) v_q <= 1'b0;
                else     v_q <= va;
            end
            assign vr = v_q, firstr = first_q, lastr = last_q, endr = end_q;
            assign xr = x_q, wr = w_q, pr = p_q;
        end else begin : g_rnone
            assign vr = va, firstr = firsta, lastr = lasta, endr = enda;
            assign xr = xa, wr = wa, pr = pa;
        end
    endgenerate

    // ------------------------------------------------------------ stage B
    reg [PE*DW-1:0] db;
    reg             vb, firstb, lastb, endb;
    reg [PE*PRW-1:0] pb;
    wire [PE*DW-1:0] dot;
    // stage-A signals aligned with `dot` (dsp2 delays them by its group-sum stage B1)
    wire             vx, firstx, lastx, endx;
    wire [PE*PRW-1:0] px;
    genvar gp, gi, gq, gg, gl, gn;
    generate
        if (MATRIX == 1 && MULT == 1) begin : g_dsp2
            localparam G   = DG;                   // products summed per DSP chain
            localparam NG  = (SIMD + G - 1) / G;   // group sums per lane
            localparam NPR = (PE + 1) / 2;         // pairs (the last one single when PE is odd)
            reg             vq, firstq, lastq, endq;
            reg [PE*PRW-1:0] pq;
            always @(posedge clk) begin
                pq <= pr;
                firstq <= firstr; lastq <= lastr; endq <= endr;
            end
            always @(posedge clk) begin
                if (rst) vq <= 1'b0;
                else     vq <= vr;
            end
            assign vx = vq, firstx = firstq, lastx = lastq, endx = endq, px = pq;
            // x - 128: the pixel with its MSB flipped, as a signed byte
            wire [SIMD*8-1:0] xo;
            for (gi = 0; gi < SIMD; gi = gi + 1) begin : g_xo
                assign xo[gi*8 +: 8] = {~xr[gi*8 + 7], xr[gi*8 +: 7]};
            end
            for (gq = 0; gq < NPR; gq = gq + 1) begin : g_pair
                localparam TWO = (2*gq + 1 < PE) ? 1 : 0;
                wire [NG*17-1:0] lo_s;             // lane 2gq group sums (signed)
                wire [NG*17-1:0] hi_s;             // lane 2gq+1 group sums (signed)
                for (gg = 0; gg < NG; gg = gg + 1) begin : g_grp
                    localparam N = (SIMD - gg*G < G) ? (SIMD - gg*G) : G;
                    if (TWO == 1) begin : g_two
                        reg signed [33:0] s;
                        reg        [33:0] q;       // the last DSP's P register
                        integer i;
                        always @* begin
                            s = 34'sd65536;        // 2^16: see the split below
                            for (i = 0; i < N; i = i + 1)
                                s = s + $signed(xo[(gg*G + i)*8 +: 8]) * $signed({
                                        wr[(2*gq + 1)*LW + (gg*G + i)*8 +: 8],
                                        {9{wr[2*gq*LW + (gg*G + i)*8 + 7]}},
                                        wr[2*gq*LW + (gg*G + i)*8 +: 8]});
                        end
                        always @(posedge clk) q <= s;
                        // q = S_hi*2^17 + S_lo + 2^16 with |S_lo| < 2^16:
                        // S_hi = q[33:17], S_lo = q[16:0] - 2^16 (MSB flipped)
                        assign lo_s[gg*17 +: 17] = {~q[16], q[15:0]};
                        assign hi_s[gg*17 +: 17] = q[33:17];
                    end else begin : g_one
                        reg signed [16:0] s;
                        reg        [16:0] q;
                        integer i;
                        always @* begin
                            s = 17'sd0;
                            for (i = 0; i < N; i = i + 1)
                                s = s + $signed(xo[(gg*G + i)*8 +: 8])
                                      * $signed(wr[2*gq*LW + (gg*G + i)*8 +: 8]);
                        end
                        always @(posedge clk) q <= s;
                        assign lo_s[gg*17 +: 17] = q;
                        assign hi_s[gg*17 +: 17] = 17'd0;
                    end
                end
                // adder trees over the group sums of each lane: a balanced binary heap of
                // cf_add (node n at tv[n*DW +: DW], leaves NL..NL+NG-1, root 1), each as
                // wide as its subtree needs
                localparam L  = (NG > 1) ? $clog2(NG) : 0;
                localparam NL = 1 << L;
                for (gl = 0; gl <= TWO; gl = gl + 1) begin : g_lane
                    wire [NG*17-1:0] d = gl ? hi_s : lo_s;
                    wire [2*NL*DW-1:0] tv;
                    for (gn = 0; gn < 2*NL; gn = gn + 1) begin : g_n
                        localparam H  = L + 1 - $clog2(gn + 1);   // height above the leaves
                        localparam FL = (gn << H) - NL;            // first leaf under node gn
                        localparam FR = (H > 0) ? (((2*gn + 1) << (H - 1)) - NL) : NG;
                        localparam W  = 17 + H;
                        if (gn == 0 || FL >= NG) begin : g_none
                            assign tv[gn*DW +: DW] = {DW{1'b0}};
                        end else if (H == 0) begin : g_leaf
                            assign tv[gn*DW +: DW] = {{(DW-17){d[FL*17 + 16]}}, d[FL*17 +: 17]};
                        end else if (FR >= NG) begin : g_pass
                            assign tv[gn*DW +: DW] = tv[2*gn*DW +: DW];
                        end else begin : g_add
                            wire [W-1:0] sum2;
                            cf_add #(.W(W)) u_add (.a(tv[2*gn*DW +: W]), .b(tv[(2*gn + 1)*DW +: W]),
                                                   .y(sum2));
                            if (W < DW) begin : g_ext
                                assign tv[gn*DW +: DW] = {{(DW-W){sum2[W-1]}}, sum2};
                            end else begin : g_fit
                                assign tv[gn*DW +: DW] = sum2;
                            end
                        end
                    end
                    assign dot[(2*gq + gl)*DW +: DW] = tv[DW +: DW];
                    wire unused_tv = &{1'b0, tv};
                end
                if (TWO == 0) begin : g_nohi
                    wire unused_hi = &{1'b0, hi_s};
                end
            end
        end else if (MATRIX == 0 && PIPE >= 2 && SIMD > PCH) begin : g_split
            // stage P: NPC registered partial popcounts of PCH bits per PE, summed in B
            localparam NPC = (SIMD + PCH - 1) / PCH;
            localparam QW  = $clog2(PCH + 1);
            reg             vq, firstq, lastq, endq;
            reg [PE*PRW-1:0] pq;
            always @(posedge clk) begin
                pq <= pr;
                firstq <= firstr; lastq <= lastr; endq <= endr;
            end
            always @(posedge clk) begin
                if (rst) vq <= 1'b0;
                else     vq <= vr;
            end
            assign vx = vq, firstx = firstq, lastx = lastq, endx = endq, px = pq;
            for (gp = 0; gp < PE; gp = gp + 1) begin : g_dot
                wire [SIMD-1:0] m = ~(xr ^ wr[gp*LW +: LW]);
                reg  [NPC*QW-1:0] part;
                for (gi = 0; gi < NPC; gi = gi + 1) begin : g_part
                    localparam N = (SIMD - gi*PCH < PCH) ? (SIMD - gi*PCH) : PCH;
                    wire [31:0] c = $countones(m[gi*PCH +: N]);
                    always @(posedge clk) part[gi*QW +: QW] <= c[QW-1:0];
                    wire unused_c = &{1'b0, c[31:QW]};
                end
                reg [DW-1:0] s;
                integer i;
                always @* begin
                    s = {DW{1'b0}};
                    for (i = 0; i < NPC; i = i + 1)
                        s = s + {{(DW-QW){1'b0}}, part[i*QW +: QW]};
                end
                assign dot[gp*DW +: DW] = s;
            end
        end else begin : g_direct
            assign vx = vr, firstx = firstr, lastx = lastr, endx = endr, px = pr;
            for (gp = 0; gp < PE; gp = gp + 1) begin : g_dot
                if (MATRIX == 0) begin : g_xnor
                    wire [SIMD-1:0] m = ~(xr ^ wr[gp*LW +: LW]);
                    wire [31:0] pc = $countones(m);
                    assign dot[gp*DW +: DW] = pc[DW-1:0];
                    wire unused_pc = &{1'b0, pc[31:DW]};
                end else begin : g_int8
                    reg signed [DW-1:0] s;
                    integer i;
                    always @* begin
                        s = {DW{1'b0}};
                        for (i = 0; i < SIMD; i = i + 1)
                            s = s + $signed({1'b0, xr[i*8 +: 8]}) * $signed(wr[gp*LW + i*8 +: 8]);
                    end
                    assign dot[gp*DW +: DW] = s;
                end
            end
        end
    endgenerate
    always @(posedge clk) begin
        db <= dot;
        pb <= px;
        firstb <= firstx; lastb <= lastx; endb <= endx;
    end
    always @(posedge clk) begin
        if (rst) vb <= 1'b0;
        else     vb <= vx;
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
        if (rst) inflight <= 4'd0;
        else inflight <= inflight + ((acc_beat && next_end) ? 4'd1 : 4'd0) - (push ? 4'd1 : 4'd0);
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
