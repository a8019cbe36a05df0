// cf_axis_out: internal stream -> AXI4-Stream master, TDATA zero-padded to
// whole bytes, TLAST on the last beat of every frame of BEATS beats, TUSER = 1
// on the TLAST beat of a frame whose input was ended early by TLAST (padded by
// cf_axis_in; its values are not the golden model's result for any real input).
//
// The per-frame flags arrive from cf_axis_in (f_valid/f_ready/f_bad, one per
// input frame) into an FD-deep FIFO and leave with the frames' last output
// beats; the last beat of a frame waits until its flag is there (it nearly
// always is: the input frame ends before its output does). FD bounds the frames
// between the two adapters (cf_axis_in holds a frame's last beat while the flag
// FIFO is full), so it must exceed the frames in flight to cost no throughput.
// Outputs are registered (a 2-entry FIFO), so m_axis_* do not depend
// combinationally on anything outside this module; s_ready and f_ready come from
// registers.
`default_nettype none
module cf_axis_out #(
    parameter W     = 10,
    parameter BEATS = 1,
    parameter TW    = ((W + 7) / 8) * 8,
    parameter FD    = 16
) (
    input  wire          clk,
    input  wire          rst,
    input  wire          s_valid,
    output wire          s_ready,
    input  wire [W-1:0]  s_data,
    input  wire          f_valid,
    output wire          f_ready,
    input  wire          f_bad,
    output wire [TW-1:0] m_axis_tdata,
    output wire          m_axis_tvalid,
    input  wire          m_axis_tready,
    output wire          m_axis_tlast,
    output wire          m_axis_tuser
);
    // elaboration-time parameter checks (an unknown module stops every tool)
    generate
        if (W < 1 || BEATS < 1) begin : g_bad_params
            cf_axis_out_needs_W_and_BEATS_at_least_1 u_bad ();
        end
        if (TW < W || TW % 8 != 0) begin : g_bad_tw
            cf_axis_out_needs_TW_whole_bytes_holding_W u_bad ();
        end
        if (FD < 2 || (FD & (FD - 1)) != 0) begin : g_bad_fd
            cf_axis_out_needs_FD_a_power_of_2_at_least_2 u_bad ();
        end
    endgenerate

    localparam BW = (BEATS > 1) ? $clog2(BEATS) : 1;
    /* verilator lint_off WIDTHTRUNC */
    localparam [BW-1:0] B_LAST = BEATS - 1;
    /* verilator lint_on WIDTHTRUNC */

    // per-frame flags from the input adapter
    wire fq_valid, fq_bad;
    wire [$clog2(FD + 1)-1:0] unused_fcount;
    reg  [BW-1:0] cnt;
    wire last = (cnt == B_LAST);
    wire q_ready;
    assign s_ready = q_ready && (!last || fq_valid);
    wire push = s_valid && s_ready;
    cf_fifo #(.W(1), .DEPTH(FD)) u_flags (
        .clk(clk), .rst(rst),
        .s_valid(f_valid), .s_ready(f_ready), .s_data(f_bad),
        .m_valid(fq_valid), .m_ready(push && last), .m_data(fq_bad),
        .count(unused_fcount));

    always @(posedge clk) begin
        if (rst) cnt <= {BW{1'b0}};
        else if (push) cnt <= last ? {BW{1'b0}} : cnt + 1'b1;
    end

    wire [W+1:0] q;
    wire [1:0] unused_count;
    cf_fifo #(.W(W + 2), .DEPTH(2)) u_q (
        .clk(clk), .rst(rst),
        .s_valid(s_valid && s_ready), .s_ready(q_ready), .s_data({last && fq_bad, last, s_data}),
        .m_valid(m_axis_tvalid), .m_ready(m_axis_tready), .m_data(q),
        .count(unused_count));
    generate
        if (TW > W) begin : g_pad
            assign m_axis_tdata = {{(TW-W){1'b0}}, q[W-1:0]};
        end else begin : g_nopad
            assign m_axis_tdata = q[W-1:0];
        end
    endgenerate
    assign m_axis_tlast = q[W];
    assign m_axis_tuser = q[W+1];
    wire unused = &{1'b0, unused_count, unused_fcount};
endmodule
`default_nettype wire
