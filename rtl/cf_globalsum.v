// cf_globalsum: per-channel sum over all N = H*W pixels of a frame
// (global average pool with the divisor folded into the output scale).
// Input : one pixel per beat, C values of IB bits (ISIGNED: two's complement).
// Output: one beat per frame, C values of OB-bit two's complement sums.
`default_nettype none
module cf_globalsum #(
    parameter C       = 4,
    parameter IB      = 8,
    parameter ISIGNED = 0,
    parameter N       = 4,
    parameter OB      = 16,
    parameter FD      = 2
) (
    input  wire            clk,
    input  wire            rst,
    input  wire            s_valid,
    output wire            s_ready,
    input  wire [C*IB-1:0] s_data,
    output wire            m_valid,
    input  wire            m_ready,
    output wire [C*OB-1:0] m_data
);
    // elaboration-time parameter checks (an unknown module stops every tool)
    generate
        if (!(C >= 1 && IB >= 1 && N >= 1 && OB >= 1)) begin : g_bad_size
            cf_globalsum_needs_C_IB_N_OB_at_least_1 u_bad ();
        end
        if (!(ISIGNED == 0 || ISIGNED == 1)) begin : g_bad_signed
            cf_globalsum_needs_ISIGNED_0_or_1 u_bad ();
        end
        if (!(FD >= 1 && (FD & (FD - 1)) == 0)) begin : g_bad_fd
            cf_globalsum_needs_FD_1_or_a_power_of_2 u_bad ();
        end
    endgenerate

    localparam NW  = (N > 1) ? $clog2(N) : 1;
    localparam FCW = $clog2(FD + 1);
    /* verilator lint_off WIDTHTRUNC */
    localparam [NW-1:0]  N_LAST = N - 1;
    localparam [FCW-1:0] FDS    = FD;
    /* verilator lint_on WIDTHTRUNC */

    reg  [NW-1:0]  n;
    wire [FCW-1:0] fcount;
    wire last = (n == N_LAST);
    assign s_ready = !last || (fcount != FDS);
    wire beat = s_valid && s_ready;

    reg  [C*OB-1:0] acc;
    wire [C*OB-1:0] full;
    genvar c;
    generate
        for (c = 0; c < C; c = c + 1) begin : g_ch
            wire [IB-1:0] xv = s_data[c*IB +: IB];
            wire [OB-1:0] x;
            if (OB > IB) begin : g_ext
                assign x = ISIGNED ? {{(OB-IB){xv[IB-1]}}, xv} : {{(OB-IB){1'b0}}, xv};
            end else begin : g_trunc
                assign x = xv[OB-1:0];
                if (OB < IB) begin : g_unused
                    wire unused_x = &{1'b0, xv[IB-1:OB]};
                end
            end
            wire [OB-1:0] prev = (n == {NW{1'b0}}) ? {OB{1'b0}} : acc[c*OB +: OB];
            assign full[c*OB +: OB] = prev + x;
        end
    endgenerate

    always @(posedge clk) begin
        if (beat) acc <= full;
    end
    always @(posedge clk) begin
        if (rst) n <= {NW{1'b0}};
        else if (beat) n <= last ? {NW{1'b0}} : n + 1'b1;
    end

    wire fifo_s_ready;   // 1 whenever a frame sum is pushed (checked above)
    cf_fifo #(.W(C*OB), .DEPTH(FD)) u_out (
        .clk(clk), .rst(rst),
        .s_valid(beat && last), .s_ready(fifo_s_ready), .s_data(full),
        .m_valid(m_valid), .m_ready(m_ready), .m_data(m_data),
        .count(fcount));
    wire unused = &{1'b0, fifo_s_ready};
endmodule
`default_nettype wire
