// cf_avgpool: average-pool sum + per-channel threshold.
//
// Input : KK = k*k taps per output pixel, one whole pixel per beat (C values
//         of IB bits, unsigned or, with ISIGNED, two's complement), as cf_swg
//         emits them; it pads out-of-image taps with 0, so they add 0.
// Output: C bits: per channel S = sum of the taps (SW-bit signed), then
//         bit = d ? (S >= t) : (S <= t) with t a TW-bit signed threshold and
//         d the direction bit (1 = increasing). TFILE holds one word of
//         C lanes {d, t} (lane c at [c*(TW+1) +: TW+1]).
`default_nettype none
module cf_avgpool #(
    parameter C       = 4,
    parameter IB      = 4,
    parameter ISIGNED = 0,
    parameter KK      = 4,
    parameter SW      = 8,
    parameter TW      = 8,
    parameter FD      = 2,
    parameter TFILE   = ""
) (
    input  wire            clk,
    input  wire            rst,
    input  wire            s_valid,
    output wire            s_ready,
    input  wire [C*IB-1:0] s_data,
    output wire            m_valid,
    input  wire            m_ready,
    output wire [C-1:0]    m_data
);
    localparam TCW = (KK > 1) ? $clog2(KK) : 1;
    localparam FCW = $clog2(FD + 1);
    localparam LW  = TW + 1;
    localparam SWI = ((SW > IB) ? SW : IB) + 1;    // internal sum width (>= SW)
    localparam CMW = ((SWI > TW) ? SWI : TW) + 1;
    /* verilator lint_off WIDTHTRUNC */
    localparam [TCW-1:0] KK_LAST = KK - 1;
    localparam [FCW-1:0] FDS     = FD;
    /* verilator lint_on WIDTHTRUNC */

    reg [C*LW-1:0] tmem [0:0];
    initial begin
        if (TFILE != "") $readmemh(TFILE, tmem);
    end
    wire [C*LW-1:0] thr = tmem[0];

    reg  [TCW-1:0] t;
    wire [FCW-1:0] fcount;
    wire last = (t == KK_LAST);
    assign s_ready = !last || (fcount != FDS);
    wire beat = s_valid && s_ready;

    reg  [C*SWI-1:0] acc;
    wire [C*SWI-1:0] full;
    wire [C-1:0]    bits;
    genvar c;
    generate
        for (c = 0; c < C; c = c + 1) begin : g_ch
            wire [IB-1:0] xv = s_data[c*IB +: IB];
            wire [SWI-1:0] x = ISIGNED ? {{(SWI-IB){xv[IB-1]}}, xv} : {{(SWI-IB){1'b0}}, xv};
            wire [SWI-1:0] prev = (t == {TCW{1'b0}}) ? {SWI{1'b0}} : acc[c*SWI +: SWI];
            assign full[c*SWI +: SWI] = prev + x;
            wire signed [CMW-1:0] sv = $signed({{(CMW-SWI){full[c*SWI + SWI-1]}},
                                                full[c*SWI +: SWI]});
            wire [TW-1:0] tv = thr[c*LW +: TW];
            wire signed [CMW-1:0] tt = $signed({{(CMW-TW){tv[TW-1]}}, tv});
            assign bits[c] = thr[c*LW + TW] ? (sv >= tt) : (sv <= tt);
        end
    endgenerate

    always @(posedge clk) begin
        if (beat) acc <= full;
    end
    always @(posedge clk) begin
        if (rst) t <= {TCW{1'b0}};
        else if (beat) t <= last ? {TCW{1'b0}} : t + 1'b1;
    end

    wire fifo_s_ready;   // 1 whenever a pixel is pushed (checked above)
    cf_fifo #(.W(C), .DEPTH(FD)) u_out (
        .clk(clk), .rst(rst),
        .s_valid(beat && last), .s_ready(fifo_s_ready), .s_data(bits),
        .m_valid(m_valid), .m_ready(m_ready), .m_data(m_data),
        .count(fcount));
    wire unused = &{1'b0, fifo_s_ready};
endmodule
`default_nettype wire
