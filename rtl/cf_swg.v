// cf_swg: sliding-window generator with replay (im2col in time).
//
// Input : one pixel per beat (C channels x B bits, channel c at [c*B +: B]),
//         raster order, frames back to back.
// Output: for every output pixel (oy, ox) in raster order, NF times over
//         (ky, kx, chunk): the SIMD-channel chunk `chunk` of input pixel
//         (oy*S - P + ky, ox*S - P + kx); taps outside the image give the
//         matching chunk of PAD. So one output pixel is NF * K*K*(C/SIMD)
//         beats: exactly the order a PE/SIMD-folded matrix-vector unit
//         consumes (weight column j = (ky*K + kx)*C + c), and K*K beats of
//         whole pixels (SIMD = C, NF = 1) for the pooling units.
//         TAPS = K (SIMD = C only): a whole window row per beat, K beats per
//         window; tap kx at [kx*C*B +: C*B] (same column order, K times fewer
//         beats: the tap-parallel convolutions' row taps). The buffer is then
//         replicated K times, one read port per tap.
//
// Buffer: DEPTH pixels (power of two) in a simple dual-port RAM with a
// registered read (BRAM). Pixels are stored at consecutive addresses
// (wrapping), so input pixel q of the current frame sits at base + q.
// Flow control is at pixel granularity:
//   * a window may be read once the last pixel it needs has been written
//     (wcnt > need), where need = min(H-1, iy_max)*W + min(W-1, ix_max);
//   * a pixel may be written once it cannot overwrite a pixel still needed
//     by this or a later window (wcnt < oldest + DEPTH). oldest is the
//     window's top-left in-image pixel; while the window's top row is above
//     the image it is 0 (later windows still need row 0 from column 0).
// Deadlock-free when DEPTH >= (K-1)*W + K (a whole window fits); the
// generator sizes DEPTH = pow2((K-1)*W + K + (S-1)*W + K + 2) so the writer
// can run ahead across a row change.
// need and oldest + DEPTH are registers of the current window, stepped from
// registers when the window origin moves, so each check is one compare (no
// origin -> clamp -> *W -> compare -> issue path: 12-14 ns at 0.9 ns/net in
// generator/flows/timing.py, now <= 8.3 ns). wcnt counts every write since reset;
// it and the bounds wrap modulo 2^QW and compare as signed differences (the
// writer may run into the next frame, or stay behind when trailing
// rows/columns are unused by any window).
//
// The output goes through a 2-entry FIFO fed with credits (FIFO count plus
// reads in flight, minus a pop in this cycle), so s_ready and m_valid never
// depend on m_ready combinationally (m_ready only enables the next read).
// Out-of-image taps load PAD into the read register instead of the RAM word
// (a synchronous set/reset of that register: no pad multiplexer).
// RSTYLE 1 puts the buffer in block RAM (ram_style "block"): the generator
// asks for it when a LUT-RAM buffer of wide pixels would cost thousands of LUTs.
`default_nettype none
module cf_swg #(
    parameter H     = 4,
    parameter W     = 4,
    parameter C     = 2,
    parameter B     = 1,
    parameter K     = 3,
    parameter S     = 1,
    parameter P     = 1,
    parameter SIMD  = 1,
    parameter NF    = 1,
    parameter [C*B-1:0] PAD = {C*B{1'b0}},
    parameter DEPTH = 16,
    parameter RSTYLE = 0,
    parameter TAPS  = 1
) (
    input  wire              clk,
    input  wire              rst,
    input  wire              s_valid,
    output wire              s_ready,
    input  wire [C*B-1:0]    s_data,
    output wire              m_valid,
    input  wire              m_ready,
    output wire [TAPS*SIMD*B-1:0] m_data
);
    // elaboration-time parameter checks (an unknown module stops every tool); DEPTH
    // as the generator sizes it: >= (K-1)*W + K + (S-1)*W + K + 2 (a window plus the
    // slack for the writer to run ahead across a row change: the cycle model's rate)
    generate
        if (!(H >= 1 && W >= 1 && C >= 1 && B >= 1 && NF >= 1)) begin : g_bad_size
            cf_swg_needs_H_W_C_B_NF_at_least_1 u_bad ();
        end
        if (!(SIMD >= 1 && C % SIMD == 0)) begin : g_bad_simd
            cf_swg_needs_SIMD_dividing_C u_bad ();
        end
        if (!(K >= 1 && S >= 1 && P >= 0 && K <= H + 2 * P && K <= W + 2 * P)) begin : g_bad_window
            cf_swg_needs_K_S_at_least_1_P_at_least_0_and_K_within_the_padded_image u_bad ();
        end
        if (!(TAPS == 1 || (TAPS == K && SIMD == C))) begin : g_bad_taps
            cf_swg_needs_TAPS_1_or_K_with_SIMD_equal_C u_bad ();
        end
        if (!(DEPTH >= 1 && (DEPTH & (DEPTH - 1)) == 0 && DEPTH >= (K - 1) * W + K + (S - 1) * W + K + 2)) begin : g_bad_depth
            cf_swg_needs_DEPTH_a_power_of_2_holding_a_window_and_a_row_change u_bad ();
        end
        if (!(RSTYLE == 0 || RSTYLE == 1)) begin : g_bad_rstyle
            cf_swg_needs_RSTYLE_0_or_1 u_bad ();
        end
    endgenerate

    localparam PW  = C * B;
    localparam OWD = TAPS * SIMD * B;
    // divisors kept >= 1 (the checks above refuse smaller values): a refused instance
    // still elaborates far enough to name its rule
    localparam TAPS1 = (TAPS > 0) ? TAPS : 1;
    localparam SIMD1 = (SIMD > 0) ? SIMD : 1;
    localparam S1    = (S > 0) ? S : 1;
    localparam KXN = K / TAPS1;               // kx steps per window row
    localparam CF  = C / SIMD1;
    localparam OH  = (H + 2 * P - K) / S1 + 1;
    localparam OW  = (W + 2 * P - K) / S1 + 1;
    localparam HW  = H * W;
    localparam AW  = $clog2(DEPTH);
    // signed widths: coordinates and linear pixel indices
    localparam XW  = $clog2(H + W + 2 * P + K + 2) + 2;
    localparam QW0 = $clog2(HW + DEPTH + W * K + 2) + 2;
    localparam QW  = ((QW0 > XW) ? QW0 : XW) + 1;
    localparam FD  = 2;                       // output FIFO depth
    localparam FCW = $clog2(FD + 1);
    localparam CFW = (CF > 1) ? $clog2(CF) : 1;
    localparam KW  = (K > 1) ? $clog2(K) : 1;
    localparam NFW = (NF > 1) ? $clog2(NF) : 1;
    localparam OHW = (OH > 1) ? $clog2(OH) : 1;
    localparam OWW = (OW > 1) ? $clog2(OW) : 1;

    // Window constants. RX/RY: last needed column/row of a window, clamped to the image;
    // OX: first in-image column (max(wx0, 0)); 0 = first window of a row/column, 1 = the
    // second, L = the last. The need and oldest steps below are constants but for one
    // "partial" step each where a clamp starts; wx0 = ox*S - P and wy0 = oy*S - P are
    // = -P (mod S), so that step happens at a single origin (WXP, WXC, WYP) known here.
    localparam RX0  = (K - 1 - P < W - 1) ? K - 1 - P : W - 1;
    localparam RX1  = (S - P + K - 1 < W - 1) ? S - P + K - 1 : W - 1;
    localparam RXL  = ((OW - 1) * S - P + K - 1 < W - 1) ? (OW - 1) * S - P + K - 1 : W - 1;
    localparam RY0  = (K - 1 - P < H - 1) ? K - 1 - P : H - 1;
    localparam RYL  = ((OH - 1) * S - P + K - 1 < H - 1) ? (OH - 1) * S - P + K - 1 : H - 1;
    localparam OX1  = (S - P > 0) ? S - P : 0;
    localparam OXL  = ((OW - 1) * S - P > 0) ? (OW - 1) * S - P : 0;
    localparam WYL  = (OH - 1) * S - P;                   // top row of the last window row
    localparam OLST = (WYL < 0) ? 0 : WYL * W + OXL;      // oldest of the frame's last window
    localparam WYP  = (H - S - K + 1) + ((((-P - (H - S - K + 1)) % S1) + S1) % S1);
    localparam WXP  = (W - 2 * S - K + 1) + ((((-P - (W - 2 * S - K + 1)) % S1) + S1) % S1);
    localparam WXC  = (1 - 2 * S) + ((((-P - (1 - 2 * S)) % S1) + S1) % S1);
    localparam DYC  = ((-P % S1) + S1) % S1;              // wy0 + S where it first is >= 0

    // Sized copies of the integer parameters (values fit by construction;
    // the linter flags every 32-bit -> N-bit constant initialiser).
    /* verilator lint_off WIDTHTRUNC */
    localparam [CFW-1:0] CF_LAST = CF - 1;
    localparam [KW-1:0]  K_LAST  = K - 1;
    localparam [KW-1:0]  KX_LAST = KXN - 1;
    localparam [NFW-1:0] NF_LAST = NF - 1;
    localparam [OHW-1:0] OH_LAST = OH - 1;
    localparam [OWW-1:0] OW_LAST = OW - 1;
    localparam [AW-1:0]  A_HW    = HW;
    localparam signed [XW-1:0] SP   = P;
    localparam signed [XW-1:0] SS   = S;
    localparam signed [XW-1:0] SH   = H;
    localparam signed [XW-1:0] SWD  = W;
    localparam signed [XW-1:0] X_YU  = H - S - K;         // wy0 <= : next row unclamped
    localparam signed [XW-1:0] X_YC  = H - K;             // wy0 >= : this row clamped
    localparam signed [XW-1:0] X_NS  = -S;
    localparam signed [XW-1:0] X_XU  = W - 2 * S - K;     // wx0 <= : window after next unclamped
    localparam signed [XW-1:0] X_XC  = W - S - K;         // wx0 >= : next window clamped
    localparam signed [XW-1:0] X_N2S = -2 * S;
    localparam signed [XW-1:0] X_DXP = W - S - K - WXP;   // partial RX step
    localparam signed [XW-1:0] X_DXC = WXC + 2 * S;       // partial OX step
    localparam signed [XW-1:0] X_DX1 = RX1 - RX0;
    localparam signed [XW-1:0] X_OX1 = OX1;
    localparam signed [QW-1:0] QWD  = W;
    localparam signed [QW-1:0] QDEP = DEPTH;
    localparam signed [QW-1:0] QN0  = RY0 * W + RX0;
    localparam signed [QW-1:0] QNRU = S * W + RX0 - RXL;             // need, row step
    localparam signed [QW-1:0] QNRC = RX0 - RXL;                     //   rows clamped
    localparam signed [QW-1:0] QNRP = (H - K - WYP) * W + RX0 - RXL; //   clamp starts
    localparam signed [QW-1:0] QNF  = HW + RY0 * W + RX0 - RYL * W - RXL;   // frame step
    localparam signed [QW-1:0] QORU = S * W - OXL;                   // oldest, row step
    localparam signed [QW-1:0] QORP = DYC * W;                       //   leaves the top pad
    localparam signed [QW-1:0] QOF  = HW - OLST;                     // frame step
    /* verilator lint_on WIDTHTRUNC */

    // ---------------------------------------------------------------- buffer
    // wcnt counts every write since reset and wraps modulo 2^QW; need_q and olim_q are
    // in the same absolute count, and the checks compare signed differences (every true
    // distance is far below 2^(QW-1)). So the frame change never touches wcnt (no
    // issue -> frame_done -> wcnt path) and the write address is its low AW bits.
    reg signed [QW-1:0] wcnt;    // pixels written since reset
    reg [AW-1:0] base;           // address of pixel 0 of the reader's frame
    wire [AW-1:0] waddr = wcnt[AW-1:0];

    // ---------------------------------------------------------------- reader
    reg [OHW-1:0] oy;
    reg [OWW-1:0] ox;
    reg [NFW-1:0] nf;
    reg [KW-1:0]  ky, kx;
    reg [CFW-1:0] cf;
    reg signed [XW-1:0] wy0, wx0;      // window top-left (may be negative)

    wire signed [XW-1:0] iy = wy0 + $signed({{(XW-KW){1'b0}}, ky});
    wire signed [XW-1:0] ix = wx0 + $signed({{(XW-KW){1'b0}}, kx});
    wire signed [QW-1:0] lin = $signed({{(QW-XW){iy[XW-1]}}, iy}) * QWD
                             + $signed({{(QW-XW){ix[XW-1]}}, ix});

    // Flow-control bounds of the CURRENT window, in registers stepped when the window
    // origin moves (a registered copy of a combinational need would lag one window and
    // issue the next window early):
    //   need_q = frame start + RY*W + RX     (RY = min(wy0+K-1, H-1), RX = min(wx0+K-1, W-1))
    //   olim_q = frame start + oldest + DEPTH  (oldest = wy0 < 0 ? 0 : wy0*W + max(wx0, 0))
    // Each step is one adder on the register and a delta muxed from constants and
    // drx_q/dox_q (the next in-row steps of RX and max(wx0, 0)): a window check is a
    // single compare, and no origin -> clamp -> *W -> compare -> issue path remains.
    reg signed [QW-1:0] need_q, olim_q;
    reg signed [XW-1:0] drx_q, dox_q;

    wire [FCW-1:0] fcount;
    reg            inflight;
    wire [7:0] occ = {{(8-FCW){1'b0}}, fcount} + {7'd0, inflight};
    wire credit = (occ < FD) || (occ == FD && m_valid && m_ready);
    wire signed [QW-1:0] ndiff = need_q - wcnt;
    wire win_ok = ndiff[QW-1];               // wcnt > need
    wire issue  = win_ok && credit;

    wire last_cf = (cf == CF_LAST);
    wire last_kx = (kx == KX_LAST);
    wire last_ky = (ky == K_LAST);
    wire last_nf = (nf == NF_LAST);
    wire last_ox = (ox == OW_LAST);
    wire last_oy = (oy == OH_LAST);
    wire adv = issue && last_cf && last_kx && last_ky && last_nf;   // window origin moves
    wire frame_done = adv && last_ox && last_oy;

    // writer
    wire signed [QW-1:0] odiff = wcnt - olim_q;
    assign s_ready = odiff[QW-1];             // wcnt < oldest + DEPTH
    wire wr = s_valid && s_ready;

    always @(posedge clk) begin
        if (rst) begin
            wcnt <= {QW{1'b0}};
            base <= {AW{1'b0}};
        end else begin
            if (wr) wcnt <= wcnt + 1'b1;
            if (frame_done) base <= base + A_HW;
        end
    end

    // the steps: next window in the row / first window of the next row / of the next frame
    wire signed [QW-1:0] dneed = !last_ox ? $signed({{(QW-XW){drx_q[XW-1]}}, drx_q})
                               : last_oy  ? QNF
                               : (wy0 <= X_YU) ? QNRU : (wy0 >= X_YC) ? QNRC : QNRP;
    wire signed [QW-1:0] dolim = !last_ox ? (wy0[XW-1] ? {QW{1'b0}}
                                             : $signed({{(QW-XW){dox_q[XW-1]}}, dox_q}))
                               : last_oy  ? QOF
                               : (wy0 < X_NS) ? {QW{1'b0}} : wy0[XW-1] ? QORP : QORU;
    always @(posedge clk) begin
        if (rst) begin
            need_q <= QN0;   olim_q <= QDEP;
            drx_q  <= X_DX1; dox_q  <= X_OX1;
        end else if (adv) begin
            need_q <= need_q + dneed;
            olim_q <= olim_q + dolim;
            // the steps after the next window of this row (garbage past the row's end,
            // never used: the row change reloads them)
            if (!last_ox) begin
                drx_q <= (wx0 <= X_XU) ? SS : (wx0 >= X_XC) ? {XW{1'b0}} : X_DXP;
                dox_q <= (wx0 >= X_NS) ? SS : (wx0 <= X_N2S) ? {XW{1'b0}} : X_DXC;
            end else begin
                drx_q <= X_DX1;
                dox_q <= X_OX1;
            end
        end
    end

    always @(posedge clk) begin
        if (rst) begin
            oy <= {OHW{1'b0}}; ox <= {OWW{1'b0}}; nf <= {NFW{1'b0}};
            ky <= {KW{1'b0}};  kx <= {KW{1'b0}};  cf <= {CFW{1'b0}};
            wy0 <= -SP; wx0 <= -SP;
        end else if (issue) begin
            if (!last_cf) cf <= cf + 1'b1;
            else begin
                cf <= {CFW{1'b0}};
                if (!last_kx) kx <= kx + 1'b1;
                else begin
                    kx <= {KW{1'b0}};
                    if (!last_ky) ky <= ky + 1'b1;
                    else begin
                        ky <= {KW{1'b0}};
                        if (!last_nf) nf <= nf + 1'b1;
                        else begin
                            nf <= {NFW{1'b0}};
                            if (!last_ox) begin
                                ox  <= ox + 1'b1;
                                wx0 <= wx0 + SS;
                            end else begin
                                ox  <= {OWW{1'b0}};
                                wx0 <= -SP;
                                if (!last_oy) begin
                                    oy  <= oy + 1'b1;
                                    wy0 <= wy0 + SS;
                                end else begin
                                    oy  <= {OHW{1'b0}};
                                    wy0 <= -SP;
                                end
                            end
                        end
                    end
                end
            end
        end
    end

    // ------------------------------------------------- registered read, mux
    reg [TAPS*PW-1:0] rd_q;            // tap t (ix + t) at [t*PW +: PW]
    reg [CFW-1:0] cf_q;
    wire row_in = (iy >= 0) && (iy < SH);
    genvar gt;
    generate
        for (gt = 0; gt < TAPS; gt = gt + 1) begin : g_tap
            /* verilator lint_off WIDTHTRUNC */
            localparam signed [XW-1:0] ST = gt;
            localparam [AW-1:0] AT = gt;
            /* verilator lint_on WIDTHTRUNC */
            wire signed [XW-1:0] ixt = ix + ST;
            wire tap_in = row_in && (ixt >= 0) && (ixt < SWD);
            // explicitly sized: the address wraps at DEPTH (some simulators evaluate an
            // index expression wider than its operands)
            wire [AW-1:0] raddr = base + lin[AW-1:0] + AT;
            if (RSTYLE == 1) begin : g_block
                (* ram_style = "block" *) reg [PW-1:0] mem [0:DEPTH-1];
                always @(posedge clk) begin
                    if (wr) mem[waddr] <= s_data;
                end
                always @(posedge clk) begin
                    rd_q[gt*PW +: PW] <= tap_in ? mem[raddr] : PAD;
                end
            end else begin : g_auto
                reg [PW-1:0] mem [0:DEPTH-1];
                always @(posedge clk) begin
                    if (wr) mem[waddr] <= s_data;
                end
                always @(posedge clk) begin
                    rd_q[gt*PW +: PW] <= tap_in ? mem[raddr] : PAD;
                end
            end
        end
    endgenerate

    always @(posedge clk) begin
        cf_q <= cf;
    end
    always @(posedge clk) begin
        if (rst) inflight <= 1'b0;
        else     inflight <= issue;
    end

    wire [TAPS*PW-1:0] pix = rd_q;
    wire [OWD-1:0] chunk;
    wire fifo_s_ready;   // always 1 when inflight: guaranteed by the credit check
    generate
        if (CF == 1) begin : g_whole
            assign chunk = pix;
            wire unused_cf = &{1'b0, cf_q};
        end else begin : g_chunk
            // an array indexed by cf_q: a CF:1 multiplexer per bit (a variable part-select
            // pix[cf_q*OWD +: OWD] synthesizes as a barrel shifter, ~6x the LUTs)
            wire [OWD-1:0] chunks [0:CF-1];
            genvar gc;
            for (gc = 0; gc < CF; gc = gc + 1) begin : g_c
                assign chunks[gc] = pix[gc*OWD +: OWD];
            end
            assign chunk = chunks[cf_q];
        end
    endgenerate

    cf_fifo #(.W(OWD), .DEPTH(FD)) u_out (
        .clk(clk), .rst(rst),
        .s_valid(inflight), .s_ready(fifo_s_ready), .s_data(chunk),
        .m_valid(m_valid), .m_ready(m_ready), .m_data(m_data),
        .count(fcount));

    // lin's upper bits are only range information (addresses wrap at DEPTH)
    wire unused_lin = &{1'b0, lin[QW-1:AW], fifo_s_ready};
endmodule
`default_nettype wire
