// cf_scalemac: per-group scale MAC unit (fixed-point 1x1 layer after XNOR-CF
// outputs), folded by PE and SIMD.
//
//   P[k, g] = sum_{o in group g} W[k, o] * x_o    integer MACs, group g = o / N
//   z_k     = sum_g scale[g] * P[k, g] + bias[k]  one multiply per group
//   out     = RELU ? max(0, z_k) : z_k            OB-bit two's complement
//
// Input : SF = CI/SIMD beats per output fold, NF = CO/PE folds per pixel,
//         fold-major (cf_swg order with K = 1): beat (nf, sf) carries
//         x[sf*SIMD +: SIMD] (element i at [i*IB +: IB]).
// Either SIMD divides N (CPG = N/SIMD beats per group) or N divides SIMD
// (GPC = SIMD/N whole groups per beat); GS = min(SIMD, N) elements per
// sub-sum.
// Memories: WMEM word nf*SF + sf: PE lanes of SIMD int8 weights (lane p at
//   [p*SIMD*8 +: SIMD*8]); SMEM word sf: GPC unsigned SCW-bit scales of the
//   groups in beat sf (group sf/CPG when CPG > 1); BMEM word nf: PE signed
//   BW-bit biases.
// PIPE (timing): 0 = as below; 1 = one more register stage R after the weight /
//   scale / bias reads (the block RAM output register, or a fabric register the
//   DSP48 B/A input register can absorb: the weight ROM's 2.45 ns clock-to-out no
//   longer starts the multiply-add cascade). It delays the whole beat (data, valid,
//   first/last/end/group flags, scales, bias): same results, one more cycle of
//   latency, the same rate (an output credit is held one cycle longer, which the
//   generator's FIFO depths absorb: FD 8 below 4 beats per pixel, 2 from 4, 1 from 8).
// WRT (run-time weights, docs/WEIGHTS.md): 0 = WMEM / SMEM / BMEM are ROMs initialised
//   from WFILE / SFILE / BFILE (tie the wr_* ports to 0); 1 = RAMs without initial
//   contents written through wr_*: wr_en[0] writes WMEM, [1] SMEM, [2] BMEM word
//   wr_addr from the low bits of wr_data (LA, LD hold the widest). WSTYLE 3: the
//   weights in UltraRAM (WRT 1 only).
// Pipeline A (accept, reads) -> [R (read register, PIPE 1)] -> B (sub-sums) ->
// C (group sums, scale multiply) -> D (accumulate, bias, ReLU, assembly) -> FIFO,
// never stalling; the beat completing a pixel needs an output credit (see cf_mvu).
`default_nettype none
module cf_scalemac #(
    parameter IB      = 8,
    parameter ISIGNED = 0,
    parameter SIMD    = 4,
    parameter PE      = 1,
    parameter CI      = 8,
    parameter CO      = 2,
    parameter N       = 4,
    parameter SCW     = 16,
    parameter GW      = 24,
    parameter ZW      = 40,
    parameter BW      = 32,
    parameter OB      = 32,
    parameter RELU    = 1,
    parameter FD      = 4,
    parameter WFILE   = "",
    parameter WSTYLE  = 0,
    parameter SFILE   = "",
    parameter BFILE   = "",
    parameter PIPE    = 0,
    parameter WRT     = 0,
    parameter LA      = 1,
    parameter LD      = 1
) (
    input  wire               clk,
    input  wire               rst,
    input  wire               s_valid,
    output wire               s_ready,
    input  wire [SIMD*IB-1:0] s_data,
    output wire               m_valid,
    input  wire               m_ready,
    output wire [CO*OB-1:0]   m_data,
    input  wire [2:0]         wr_en,    // WRT 1: {bias, scales, weights}
    input  wire [LA-1:0]      wr_addr,
    input  wire [LD-1:0]      wr_data
);
    // elaboration-time parameter checks (an unknown module stops every tool)
    generate
        if (!(IB >= 1 && CI >= 1 && CO >= 1 && SCW >= 1 && GW >= 1 && ZW >= 1 && BW >= 1 && OB >= 1)) begin : g_bad_size
            cf_scalemac_needs_IB_CI_CO_SCW_GW_ZW_BW_OB_at_least_1 u_bad ();
        end
        if (!(N >= 1 && CI % N == 0)) begin : g_bad_n
            cf_scalemac_needs_N_dividing_CI u_bad ();
        end
        if (!(SIMD >= 1 && CI % SIMD == 0 && (N % SIMD == 0 || SIMD % N == 0))) begin : g_bad_simd
            cf_scalemac_needs_SIMD_dividing_CI_and_dividing_or_a_multiple_of_N u_bad ();
        end
        if (!(PE >= 1 && CO % PE == 0)) begin : g_bad_pe
            cf_scalemac_needs_PE_dividing_CO u_bad ();
        end
        if (!((ISIGNED == 0 || ISIGNED == 1) && (RELU == 0 || RELU == 1))) begin : g_bad_flags
            cf_scalemac_needs_ISIGNED_and_RELU_0_or_1 u_bad ();
        end
        if (WRT != 1 && !(WSTYLE >= 0 && WSTYLE <= 2)) begin : g_bad_wstyle
            cf_scalemac_needs_WSTYLE_0_to_2 u_bad ();
        end
        if (WRT == 1 && !(WSTYLE >= 0 && WSTYLE <= 3)) begin : g_bad_wstyle_wrt
            cf_scalemac_needs_WSTYLE_0_to_3_with_WRT_1 u_bad ();
        end
        if (!(FD >= 1 && FD <= 128 && (FD & (FD - 1)) == 0)) begin : g_bad_fd
            cf_scalemac_needs_FD_1_to_128_a_power_of_2 u_bad ();
        end
        if (!(PIPE == 0 || PIPE == 1)) begin : g_bad_pipe
            cf_scalemac_needs_PIPE_0_or_1 u_bad ();
        end
    endgenerate

    // divisors kept >= 1 (the checks above refuse smaller values): a refused instance
    // still elaborates far enough to name its rule
    localparam SIMD1 = (SIMD > 0) ? SIMD : 1;
    localparam PE1   = (PE > 0) ? PE : 1;
    localparam N1    = (N > 0) ? N : 1;
    localparam SF   = CI / SIMD1;
    localparam NF   = CO / PE1;
    localparam NW   = NF * SF;
    localparam GS   = (SIMD1 < N1) ? SIMD1 : N1;
    localparam GPC  = SIMD1 / GS;
    localparam CPG  = N1 / GS;
    localparam WAW  = (NW > 1) ? $clog2(NW) : 1;
    localparam NFW  = (NF > 1) ? $clog2(NF) : 1;
    localparam SFW  = (SF > 1) ? $clog2(SF) : 1;
    localparam CGW  = (CPG > 1) ? $clog2(CPG) : 1;
    localparam LW   = SIMD * 8;
    localparam PRW  = IB + 9;                          // one product
    localparam SJW  = PRW + $clog2(GS + 1);            // sub-sum of GS products
    localparam GPW0 = PRW + $clog2(N + 1);
    localparam GPW  = ((GW > GPW0) ? GW : GPW0) + 1;   // group partial P (+1: extension >= 1)
    localparam MW   = GPW + SCW + 1 + $clog2(GPC + 1); // scaled group(s) of a beat
    localparam ZI0  = (ZW > BW) ? ZW : BW;
    localparam ZI1  = MW + $clog2(CI / N1 + 1) + 1;
    localparam ZI   = ((ZI0 > ZI1) ? ZI0 : ZI1) + 1;   // accumulator
    localparam OUTW = CO * OB;
    localparam FCW  = $clog2(FD + 1);
    // pixels in flight (accepted, not yet pushed): a pixel-completing beat accepted in
    // cycle t is counted from t+1 and pushed in cycle t+LAT (stages A, [R], B, C), at
    // most one is accepted per cycle, so inflight <= LAT = 3 + PIPE <= 4 < 2^IFW (3 bits,
    // as before PIPE existed); occ = fcount + inflight <= FD + 7 <= 135 fits its 8 bits
    localparam LAT  = 3 + ((PIPE == 1) ? 1 : 0);
    localparam IFW0 = $clog2(LAT + 1);
    localparam IFW  = (IFW0 > 3) ? IFW0 : 3;
    /* verilator lint_off WIDTHTRUNC */
    localparam [IFW-1:0] IF_ONE = 1;
    /* verilator lint_on WIDTHTRUNC */

    /* verilator lint_off WIDTHTRUNC */
    localparam [WAW-1:0] NW_LAST  = NW - 1;
    localparam [SFW-1:0] SF_LAST  = SF - 1;
    localparam [NFW-1:0] NF_LAST  = NF - 1;
    localparam [CGW-1:0] CPG_LAST = CPG - 1;
    localparam [7:0]     FDS8     = FD;
    /* verilator lint_on WIDTHTRUNC */

    generate
        if (!(WRT == 0 || (WRT == 1 && LA >= WAW && LA >= SFW && LA >= NFW && LD >= PE*LW
                           && LD >= GPC*SCW && LD >= PE*BW))) begin : g_bad_wrt
            cf_scalemac_needs_WRT_0_or_1_with_LA_LD_holding_the_memories u_bad ();
        end
    endgenerate

    reg [GPC*SCW-1:0] smem [0:SF-1];
    reg [PE*BW-1:0]   bmem [0:NF-1];
    generate
        if (WRT == 1) begin : g_write
            always @(posedge clk) begin
                if (wr_en[1]) smem[wr_addr[SFW-1:0]] <= wr_data[GPC*SCW-1:0];
                if (wr_en[2]) bmem[wr_addr[NFW-1:0]] <= wr_data[PE*BW-1:0];
            end
        end else begin : g_init
            initial begin
                if (SFILE != "") $readmemh(SFILE, smem);
                if (BFILE != "") $readmemh(BFILE, bmem);
            end
        end
    endgenerate
    wire unused_wr = &{1'b0, wr_en, wr_addr, wr_data};

    // ------------------------------------------------------------ stage A
    reg [WAW-1:0] ia;
    reg [SFW-1:0] sfc;
    reg [NFW-1:0] nfc;
    reg [CGW-1:0] cig;                 // beat index inside the current group
    wire next_end = (ia == NW_LAST);
    wire [FCW-1:0] fcount;
    reg  [IFW-1:0] inflight;
    wire [7:0] occ = {{(8-FCW){1'b0}}, fcount} + {{(8-IFW){1'b0}}, inflight};
    wire credit = occ < FDS8;
    assign s_ready = !next_end || credit;
    wire beat = s_valid && s_ready;

    reg               va, firsta, lasta, enda, gstarta, genda;
    reg [SIMD*IB-1:0] xa;
    wire [PE*LW-1:0]  wa;              // weight word of the accepted beat (cf_rom)
    reg [GPC*SCW-1:0] sa;
    reg [PE*BW-1:0]   ba;
    always @(posedge clk) begin
        if (beat) begin
            xa <= s_data;
            sa <= smem[sfc];
        end
        if (beat && sfc == {SFW{1'b0}}) ba <= bmem[nfc];
    end
    always @(posedge clk) begin
        if (rst) begin
            ia <= {WAW{1'b0}}; sfc <= {SFW{1'b0}}; nfc <= {NFW{1'b0}}; cig <= {CGW{1'b0}};
            va <= 1'b0; firsta <= 1'b0; lasta <= 1'b0; enda <= 1'b0;
            gstarta <= 1'b0; genda <= 1'b0;
        end else begin
            va <= beat;
            if (beat) begin
                firsta  <= (sfc == {SFW{1'b0}});
                lasta   <= (sfc == SF_LAST);
                enda    <= next_end;
                gstarta <= (cig == {CGW{1'b0}});
                genda   <= (cig == CPG_LAST);
                cig     <= (cig == CPG_LAST) ? {CGW{1'b0}} : cig + 1'b1;
                ia      <= next_end ? {WAW{1'b0}} : ia + 1'b1;
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
                .clk(clk), .en(beat), .addr(ia), .q(wa),
                .we(wr_en[0]), .waddr(wr_addr[WAW-1:0]), .wdata(wr_data[PE*LW-1:0]));
        end else begin : g_wrom
            cf_rom #(.W(PE*LW), .DEPTH(NW), .FILE(WFILE), .STYLE(WSTYLE)) u_wrom (
                .clk(clk), .en(beat), .addr(ia), .q(wa));
        end
    endgenerate

    // ------------------------------------------------------------ stage R (PIPE 1)
    // the stage-A beat as stage B sees it: registered once more when PIPE is 1
    wire               vr, firstr, lastr, endr, gstartr, gendr;
    wire [SIMD*IB-1:0] xr;
    wire [PE*LW-1:0]   wr;
    wire [GPC*SCW-1:0] sr;
    wire [PE*BW-1:0]   br;
    generate
        if (PIPE >= 1) begin : g_rreg
            reg               v_q, first_q, last_q, end_q, gstart_q, gend_q;
            reg [SIMD*IB-1:0] x_q;
            reg [PE*LW-1:0]   w_q;
            reg [GPC*SCW-1:0] s_q;
            reg [PE*BW-1:0]   b_q;
            always @(posedge clk) begin
                x_q <= xa; w_q <= wa; s_q <= sa; b_q <= ba;
                first_q <= firsta; last_q <= lasta; end_q <= enda;
                gstart_q <= gstarta; gend_q <= genda;
            end
            always @(posedge clk) begin
                if (rst) v_q <= 1'b0;
                else     v_q <= va;
            end
            assign vr = v_q, firstr = first_q, lastr = last_q, endr = end_q;
            assign gstartr = gstart_q, gendr = gend_q;
            assign xr = x_q, wr = w_q, sr = s_q, br = b_q;
        end else begin : g_rnone
            assign vr = va, firstr = firsta, lastr = lasta, endr = enda;
            assign gstartr = gstarta, gendr = genda;
            assign xr = xa, wr = wa, sr = sa, br = ba;
        end
    endgenerate

    // ------------------------------------------------------------ stage B
    wire [PE*GPC*SJW-1:0] sub;
    genvar gp, gj;
    generate
        for (gp = 0; gp < PE; gp = gp + 1) begin : g_pe
            for (gj = 0; gj < GPC; gj = gj + 1) begin : g_grp
                reg signed [SJW-1:0] s;
                integer i;
                always @* begin
                    s = {SJW{1'b0}};
                    for (i = 0; i < GS; i = i + 1)
                        if (ISIGNED)
                            s = s + $signed(xr[(gj*GS + i)*IB +: IB])
                                  * $signed(wr[gp*LW + (gj*GS + i)*8 +: 8]);
                        else
                            s = s + $signed({1'b0, xr[(gj*GS + i)*IB +: IB]})
                                  * $signed(wr[gp*LW + (gj*GS + i)*8 +: 8]);
                end
                assign sub[(gp*GPC + gj)*SJW +: SJW] = s;
            end
        end
    endgenerate
    reg [PE*GPC*SJW-1:0] sb;
    reg [GPC*SCW-1:0]    scb;
    reg [PE*BW-1:0]      bb;
    reg vb, firstb, lastb, endb, gstartb, gendb;
    always @(posedge clk) begin
        sb <= sub; scb <= sr; bb <= br;
        firstb <= firstr; lastb <= lastr; endb <= endr;
        gstartb <= gstartr; gendb <= gendr;
    end
    always @(posedge clk) begin
        if (rst) vb <= 1'b0;
        else     vb <= vr;
    end

    // ------------------------------------------------------------ stage C
    wire [PE*MW-1:0] scaled;
    generate
        for (gp = 0; gp < PE; gp = gp + 1) begin : g_sc
            if (CPG == 1) begin : g_whole
                // GPC whole groups in this beat
                reg signed [MW-1:0] m;
                integer j;
                always @* begin
                    m = {MW{1'b0}};
                    for (j = 0; j < GPC; j = j + 1)
                        m = m + $signed(sb[(gp*GPC + j)*SJW +: SJW])
                              * $signed({1'b0, scb[j*SCW +: SCW]});
                end
                assign scaled[gp*MW +: MW] = m;
                wire unused_g = &{1'b0, gstartb, gendb};
            end else begin : g_part
                // one group over CPG beats: integer partial sum, scale at the end
                reg  [GPW-1:0] pacc;
                wire [SJW-1:0] sj = sb[gp*GPC*SJW +: SJW];
                wire signed [GPW-1:0] g = (gstartb ? {GPW{1'b0}} : pacc)
                                        + {{(GPW-SJW){sj[SJW-1]}}, sj};
                always @(posedge clk) begin
                    if (vb) pacc <= g;
                end
                wire signed [MW-1:0] m = $signed(g) * $signed({1'b0, scb[SCW-1:0]});
                assign scaled[gp*MW +: MW] = gendb ? m : {MW{1'b0}};
            end
        end
    endgenerate
    reg [PE*MW-1:0] mc;
    reg [PE*BW-1:0] bc;
    reg vc, firstc, lastc, endc;
    always @(posedge clk) begin
        mc <= scaled; bc <= bb;
        firstc <= firstb; lastc <= lastb; endc <= endb;
    end
    always @(posedge clk) begin
        if (rst) vc <= 1'b0;
        else     vc <= vb;
    end

    // ------------------------------------------------------------ stage D
    reg  [PE*ZI-1:0] zacc;
    wire [PE*ZI-1:0] znext;
    wire [PE*OB-1:0] outv;
    generate
        for (gp = 0; gp < PE; gp = gp + 1) begin : g_z
            wire [MW-1:0] mv = mc[gp*MW +: MW];
            wire [BW-1:0] bv = bc[gp*BW +: BW];
            wire [ZI-1:0] prev = firstc ? {{(ZI-BW){bv[BW-1]}}, bv} : zacc[gp*ZI +: ZI];
            wire [ZI-1:0] z = prev + {{(ZI-MW){mv[MW-1]}}, mv};
            assign znext[gp*ZI +: ZI] = z;
            wire neg = RELU ? z[ZI-1] : 1'b0;
            if (OB <= ZI) begin : g_trunc
                // the generator sizes OB to hold every reachable value
                assign outv[gp*OB +: OB] = neg ? {OB{1'b0}} : z[OB-1:0];
                if (OB < ZI) begin : g_unused
                    wire unused_z = &{1'b0, z[ZI-1:OB]};
                end
            end else begin : g_ext
                assign outv[gp*OB +: OB] = neg ? {OB{1'b0}} : {{(OB-ZI){z[ZI-1]}}, z};
            end
        end
    endgenerate
    always @(posedge clk) begin
        if (vc) zacc <= znext;
    end

    wire [OUTW-1:0] asm_next;
    generate
        if (NF == 1) begin : g_one
            assign asm_next = outv;
        end else begin : g_many
            reg [OUTW-PE*OB-1:0] asmb;
            assign asm_next = {outv, asmb};
            always @(posedge clk) begin
                if (vc && lastc) asmb <= asm_next[OUTW-1:PE*OB];
            end
        end
    endgenerate
    wire push = vc && lastc && endc;

    always @(posedge clk) begin
        if (rst) inflight <= {IFW{1'b0}};
        else inflight <= inflight + ((beat && next_end) ? IF_ONE : {IFW{1'b0}})
                            - (push ? IF_ONE : {IFW{1'b0}});
    end

    wire fifo_s_ready;   // 1 on push: guaranteed by the credit check
    cf_fifo #(.W(OUTW), .DEPTH(FD)) u_out (
        .clk(clk), .rst(rst),
        .s_valid(push), .s_ready(fifo_s_ready), .s_data(asm_next),
        .m_valid(m_valid), .m_ready(m_ready), .m_data(m_data),
        .count(fcount));
    wire unused = &{1'b0, fifo_s_ready};
endmodule
`default_nettype wire
