// cf_avgpool: average-pool sum + per-channel threshold, folded over channels.
//
// Input : for every output pixel, KK = k*k taps in (ky, kx) order, each as
//         CF = C/SIMD chunks of SIMD channels (values of IB bits, unsigned or,
//         with ISIGNED, two's complement; channel i of chunk cf is channel
//         cf*SIMD + i), as cf_swg emits them with NF = 1; it pads out-of-image
//         taps with 0, so they add 0. SIMD = C: one whole pixel per beat.
// Output: C bits: per channel S = sum of its KK taps (SW-bit signed), then
//         bit = d ? (S >= t) : (S <= t) with t a TW-bit signed threshold and d
//         the direction bit (1 = increasing). TFILE holds CF words, word cf =
//         SIMD lanes {d, t} of chunk cf (lane i at [i*(TW+1) +: TW+1]).
// WRT (run-time weights, docs/WEIGHTS.md): 0 = the threshold memory is a ROM
// initialised from TFILE (tie wr_* to 0); 1 = a RAM without initial contents:
// wr_en writes word wr_addr from the low bits of wr_data (LA >= its address width,
// LD >= SIMD*(TW+1)).
// Only SIMD adders and comparators: the partial sums of all C channels live
// in a CF-entry register file (distributed RAM). KK*CF cycles per output
// pixel. The beat completing a pixel is accepted only with room in the output
// FIFO (registered count), so s_ready does not depend on m_ready.
`default_nettype none
module cf_avgpool #(
    parameter C       = 4,
    parameter SIMD    = 4,
    parameter IB      = 4,
    parameter ISIGNED = 0,
    parameter KK      = 4,
    parameter SW      = 8,
    parameter TW      = 8,
    parameter FD      = 2,
    parameter TFILE   = "",
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
    output wire [C-1:0]       m_data,
    input  wire               wr_en,    // WRT 1: the thresholds
    input  wire [LA-1:0]      wr_addr,
    input  wire [LD-1:0]      wr_data
);
    // elaboration-time parameter checks (an unknown module stops every tool)
    generate
        if (!(C >= 1 && IB >= 1 && KK >= 1 && SW >= 1 && TW >= 1)) begin : g_bad_size
            cf_avgpool_needs_C_IB_KK_SW_TW_at_least_1 u_bad ();
        end
        if (!(SIMD >= 1 && C % SIMD == 0)) begin : g_bad_simd
            cf_avgpool_needs_SIMD_dividing_C u_bad ();
        end
        if (!(ISIGNED == 0 || ISIGNED == 1)) begin : g_bad_signed
            cf_avgpool_needs_ISIGNED_0_or_1 u_bad ();
        end
        if (!(FD >= 1 && (FD & (FD - 1)) == 0)) begin : g_bad_fd
            cf_avgpool_needs_FD_1_or_a_power_of_2 u_bad ();
        end
    endgenerate

    // divisors kept >= 1 (the checks above refuse smaller values): a refused instance
    // still elaborates far enough to name its rule
    localparam SIMD1 = (SIMD > 0) ? SIMD : 1;
    localparam CF  = C / SIMD1;
    localparam TCW = (KK > 1) ? $clog2(KK) : 1;
    localparam CFW = (CF > 1) ? $clog2(CF) : 1;
    localparam FCW = $clog2(FD + 1);
    localparam LW  = TW + 1;
    localparam SWI = ((SW > IB) ? SW : IB) + 1;    // internal sum width (>= SW)
    localparam CMW = ((SWI > TW) ? SWI : TW) + 1;
    /* verilator lint_off WIDTHTRUNC */
    localparam [TCW-1:0] KK_LAST = KK - 1;
    localparam [CFW-1:0] CF_LAST = CF - 1;
    localparam [FCW-1:0] FDS     = FD;
    /* verilator lint_on WIDTHTRUNC */

    generate
        if (!(WRT == 0 || (WRT == 1 && LA >= CFW && LD >= SIMD*LW))) begin : g_bad_wrt
            cf_avgpool_needs_WRT_0_or_1_with_LA_LD_holding_the_thresholds u_bad ();
        end
    endgenerate

    reg [SIMD*LW-1:0] tmem [0:CF-1];
    generate
        if (WRT == 1) begin : g_twrite
            always @(posedge clk) begin
                if (wr_en) tmem[wr_addr[CFW-1:0]] <= wr_data[SIMD*LW-1:0];
            end
        end else begin : g_tinit
            initial begin
                if (TFILE != "") $readmemh(TFILE, tmem);
            end
        end
    endgenerate
    wire unused_wr = &{1'b0, wr_en, wr_addr, wr_data};

    reg  [TCW-1:0] t;                  // tap
    reg  [CFW-1:0] cf;                 // channel chunk
    wire [FCW-1:0] fcount;
    wire last_t  = (t == KK_LAST);
    wire last_cf = (cf == CF_LAST);
    wire done = last_t && last_cf;     // this beat completes the output pixel
    assign s_ready = !done || (fcount != FDS);
    wire beat = s_valid && s_ready;

    reg  [SIMD*SWI-1:0] acc [0:CF-1];  // partial sums, one entry per chunk
    wire [SIMD*SWI-1:0] cur = acc[cf];
    wire [SIMD*LW-1:0]  thr = tmem[cf];
    wire [SIMD*SWI-1:0] full;
    wire [SIMD-1:0]     bits;
    genvar c;
    generate
        for (c = 0; c < SIMD; c = c + 1) begin : g_ch
            wire [IB-1:0] xv = s_data[c*IB +: IB];
            wire [SWI-1:0] x = ISIGNED ? {{(SWI-IB){xv[IB-1]}}, xv} : {{(SWI-IB){1'b0}}, xv};
            wire [SWI-1:0] prev = (t == {TCW{1'b0}}) ? {SWI{1'b0}} : cur[c*SWI +: SWI];
            assign full[c*SWI +: SWI] = prev + x;
            wire signed [CMW-1:0] sv = $signed({{(CMW-SWI){full[c*SWI + SWI-1]}},
                                                full[c*SWI +: SWI]});
            wire [TW-1:0] tv = thr[c*LW +: TW];
            wire signed [CMW-1:0] tt = $signed({{(CMW-TW){tv[TW-1]}}, tv});
            assign bits[c] = thr[c*LW + TW] ? (sv >= tt) : (sv <= tt);
        end
    endgenerate

    always @(posedge clk) begin
        if (beat) acc[cf] <= full;
    end
    always @(posedge clk) begin
        if (rst) begin
            t  <= {TCW{1'b0}};
            cf <= {CFW{1'b0}};
        end else if (beat) begin
            if (last_cf) begin
                cf <= {CFW{1'b0}};
                t  <= last_t ? {TCW{1'b0}} : t + 1'b1;
            end else begin
                cf <= cf + 1'b1;
            end
        end
    end

    // output bits: chunks shifted in from the top during the last tap
    wire [C-1:0] pixel;
    generate
        if (CF == 1) begin : g_one
            assign pixel = bits;
        end else begin : g_many
            reg [C-SIMD-1:0] asmb;
            assign pixel = {bits, asmb};
            always @(posedge clk) begin
                if (beat && last_t) asmb <= pixel[C-1:SIMD];
            end
        end
    endgenerate

    wire fifo_s_ready;   // 1 whenever a pixel is pushed (checked above)
    cf_fifo #(.W(C), .DEPTH(FD)) u_out (
        .clk(clk), .rst(rst),
        .s_valid(beat && done), .s_ready(fifo_s_ready), .s_data(pixel),
        .m_valid(m_valid), .m_ready(m_ready), .m_data(m_data),
        .count(fcount));
    wire unused = &{1'b0, fifo_s_ready};
endmodule
`default_nettype wire
