// cf_axis_in: AXI4-Stream slave -> internal stream, resynchronised on TLAST.
//
// TDATA is the beat padded to whole bytes (TW = ceil(W/8)*8); the pad bits are
// ignored. Every unit behind this adapter counts BEATS beats per frame, so this
// adapter makes every frame it forwards exactly BEATS beats long:
//  * TLAST before the frame's last beat (a short frame): the beat is forwarded,
//    then the rest of the frame is padded with zero beats (TREADY low meanwhile),
//    and the frame is marked bad: f_bad = 1 with its flag (see below) and
//    short_frames counts it (saturating). The internal units stay in step.
//  * No TLAST on the frame's last beat: the frame ends there anyway (frames are
//    counted; one AXI packet may carry several whole frames, e.g. one DMA
//    transfer). The beats of a longer packet start the next frame, which a later
//    TLAST ends early: that frame is padded and marked bad, so the adapter is
//    back in step at the first TLAST.
// For every frame one flag leaves on f_valid/f_ready/f_bad together with the
// frame's last beat (cf_axis_out keeps them in a FIFO until the frame's last
// output beat). When the flag FIFO is full the last beat waits: at most that many
// frames are between the input and the output adapter; never a bubble otherwise.
// The data handshake is passed straight through (m_valid from s_axis_tvalid, TREADY
// from m_ready and registers); the generated top puts a FIFO right behind this
// adapter, so s_axis_tready comes from registers.
`default_nettype none
module cf_axis_in #(
    parameter W     = 24,
    parameter BEATS = 1,
    parameter TW    = ((W + 7) / 8) * 8
) (
    input  wire          clk,
    input  wire          rst,
    input  wire [TW-1:0] s_axis_tdata,
    input  wire          s_axis_tvalid,
    output wire          s_axis_tready,
    input  wire          s_axis_tlast,
    output wire          m_valid,
    input  wire          m_ready,
    output wire [W-1:0]  m_data,
    output wire          f_valid,       // frame flag: with the frame's last beat
    input  wire          f_ready,
    output wire          f_bad,         // 1: the frame was ended early and padded
    output wire [15:0]   short_frames   // frames ended early (saturates at 65535)
);
    // elaboration-time parameter checks (an unknown module stops every tool)
    generate
        if (W < 1 || BEATS < 1) begin : g_bad_params
            cf_axis_in_needs_W_and_BEATS_at_least_1 u_bad ();
        end
        if (TW < W || TW % 8 != 0) begin : g_bad_tw
            cf_axis_in_needs_TW_whole_bytes_holding_W u_bad ();
        end
    endgenerate

    localparam BW = (BEATS > 1) ? $clog2(BEATS) : 1;
    /* verilator lint_off WIDTHTRUNC */
    localparam [BW-1:0] B_LAST = BEATS - 1;
    /* verilator lint_on WIDTHTRUNC */

    reg  [BW-1:0] cnt;       // beat of the current frame
    reg           pad;       // padding the rest of a frame ended early
    reg  [15:0]   nshort;
    wire at_last = (cnt == B_LAST);
    wire hold    = at_last && !f_ready;          // the frame's last beat needs a flag slot

    assign m_valid       = (pad || s_axis_tvalid) && !hold;
    assign s_axis_tready = !pad && m_ready && !hold;
    assign m_data        = pad ? {W{1'b0}} : s_axis_tdata[W-1:0];
    wire   move          = m_valid && m_ready;
    wire   early         = !pad && s_axis_tlast && !at_last;

    assign f_valid      = move && at_last;
    assign f_bad        = pad;
    assign short_frames = nshort;

    always @(posedge clk) begin
        if (rst) begin
            cnt    <= {BW{1'b0}};
            pad    <= 1'b0;
            nshort <= 16'd0;
        end else if (move) begin
            cnt <= at_last ? {BW{1'b0}} : cnt + 1'b1;
            if (at_last)    pad <= 1'b0;
            else if (early) pad <= 1'b1;
            if (early && nshort != 16'hffff) nshort <= nshort + 16'd1;
        end
    end
    generate
        if (TW > W) begin : g_pad
            wire unused_pad = &{1'b0, s_axis_tdata[TW-1:W]};
        end
    endgenerate
endmodule
`default_nettype wire
