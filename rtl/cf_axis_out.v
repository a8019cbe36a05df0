// cf_axis_out: internal stream -> AXI4-Stream master, TDATA zero-padded to
// whole bytes, TLAST on the last beat of every frame of BEATS beats.
// Outputs are registered (a 2-entry FIFO), so m_axis_* do not depend
// combinationally on anything outside this module.
`default_nettype none
module cf_axis_out #(
    parameter W     = 10,
    parameter BEATS = 1,
    parameter TW    = ((W + 7) / 8) * 8
) (
    input  wire          clk,
    input  wire          rst,
    input  wire          s_valid,
    output wire          s_ready,
    input  wire [W-1:0]  s_data,
    output wire [TW-1:0] m_axis_tdata,
    output wire          m_axis_tvalid,
    input  wire          m_axis_tready,
    output wire          m_axis_tlast
);
    localparam BW = (BEATS > 1) ? $clog2(BEATS) : 1;
    /* verilator lint_off WIDTHTRUNC */
    localparam [BW-1:0] B_LAST = BEATS - 1;
    /* verilator lint_on WIDTHTRUNC */

    reg  [BW-1:0] cnt;
    wire last = (cnt == B_LAST);
    wire push = s_valid && s_ready;
    always @(posedge clk) begin
        if (rst) cnt <= {BW{1'b0}};
        else if (push) cnt <= last ? {BW{1'b0}} : cnt + 1'b1;
    end

    wire [W:0] q;
    wire [1:0] unused_count;
    cf_fifo #(.W(W + 1), .DEPTH(2)) u_q (
        .clk(clk), .rst(rst),
        .s_valid(s_valid), .s_ready(s_ready), .s_data({last, s_data}),
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
    wire unused = &{1'b0, unused_count};
endmodule
`default_nettype wire
