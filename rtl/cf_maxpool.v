// cf_maxpool: max-pool reducer, one whole pixel per beat.
//
// Input : KK = k*k taps per output pixel, one whole pixel (C channels of B bits) per beat,
//         as cf_swg emits them (SIMD = C, NF = 1).
// Output: per channel the unsigned maximum of the taps in the domain x ^ INV (INV holds a
//         B-bit mask per channel, channel c at bits [c*B, (c+1)*B)). B = 1: OR of the bits,
//         AND where the mask is 1. B > 1: an all-ones mask pools the minimum instead, a
//         sign-bit mask orders two's complement values. cf_swg pads out-of-image taps
//         with INV, which is 0 -- the identity of the maximum -- in that domain, so
//         out-of-image taps are ignored.
// The output beat is pushed into a FIFO when the last tap is accepted; the
// last tap is accepted only if the FIFO has room (registered count), so
// s_ready does not depend on m_ready.
`default_nettype none
module cf_maxpool #(
    parameter C  = 4,
    parameter B  = 1,
    parameter KK = 4,
    parameter [C*B-1:0] INV = {C*B{1'b0}},
    parameter FD = 2
) (
    input  wire           clk,
    input  wire           rst,
    input  wire           s_valid,
    output wire           s_ready,
    input  wire [C*B-1:0] s_data,
    output wire           m_valid,
    input  wire           m_ready,
    output wire [C*B-1:0] m_data
);
    // elaboration-time parameter checks (an unknown module stops every tool)
    generate
        if (!(C >= 1 && B >= 1 && KK >= 1)) begin : g_bad_size
            cf_maxpool_needs_C_B_and_KK_at_least_1 u_bad ();
        end
        if (!(FD >= 1 && (FD & (FD - 1)) == 0)) begin : g_bad_fd
            cf_maxpool_needs_FD_1_or_a_power_of_2 u_bad ();
        end
    endgenerate

    localparam TW  = (KK > 1) ? $clog2(KK) : 1;
    localparam FCW = $clog2(FD + 1);
    /* verilator lint_off WIDTHTRUNC */
    localparam [TW-1:0]  KK_LAST = KK - 1;
    localparam [FCW-1:0] FDS     = FD;
    /* verilator lint_on WIDTHTRUNC */

    reg  [TW-1:0]  t;
    reg  [C*B-1:0] acc;
    wire [FCW-1:0] fcount;
    wire last = (t == KK_LAST);
    assign s_ready = !last || (fcount != FDS);
    wire beat = s_valid && s_ready;
    wire [C*B-1:0] x = s_data ^ INV;
    wire first = (t == {TW{1'b0}});
    wire [C*B-1:0] full;

    genvar c;
    generate
        if (B == 1) begin : g_or
            assign full = first ? x : (acc | x);
        end else begin : g_max
            for (c = 0; c < C; c = c + 1) begin : g_ch
                wire [B-1:0] xc = x[c*B +: B];
                wire [B-1:0] ac = acc[c*B +: B];
                assign full[c*B +: B] = (first || xc > ac) ? xc : ac;
            end
        end
    endgenerate

    always @(posedge clk) begin
        if (beat) acc <= full;
    end
    always @(posedge clk) begin
        if (rst) t <= {TW{1'b0}};
        else if (beat) t <= last ? {TW{1'b0}} : t + 1'b1;
    end

    wire fifo_s_ready;   // 1 whenever a pixel is pushed (checked above)
    cf_fifo #(.W(C*B), .DEPTH(FD)) u_out (
        .clk(clk), .rst(rst),
        .s_valid(beat && last), .s_ready(fifo_s_ready), .s_data(full ^ INV),
        .m_valid(m_valid), .m_ready(m_ready), .m_data(m_data),
        .count(fcount));
    wire unused = &{1'b0, fifo_s_ready};
endmodule
`default_nettype wire
