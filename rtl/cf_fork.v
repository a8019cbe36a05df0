// cf_fork: one stream to two consumers (a stream of the graph read by two nodes: the
// body and the shortcut of a residual block).
//
// Eager: each output takes every beat on its own handshake, so one consumer may run up
// to two beats ahead of the other. The beats live once, in a two-entry buffer; output k
// reads the oldest entry it has not taken (n_k of them pending, 0..2). An entry is free
// when neither output still needs it, so the input is accepted when both outputs have
// fewer than two beats pending.
// Every output signal and s_ready come from registers (s_ready from the two pending
// counts, m_valid_k from n_k, m_data_k a 2:1 choice of the two entries): no
// combinational path from m*_ready to s_ready, and one beat per cycle when both
// consumers keep up (two entries are the least that allow both without that path).
// Latency 1 cycle (a beat accepted in cycle t is valid on both outputs in t + 1).
`default_nettype none
module cf_fork #(
    parameter W = 8
) (
    input  wire         clk,
    input  wire         rst,
    input  wire         s_valid,
    output wire         s_ready,
    input  wire [W-1:0] s_data,
    output wire         m0_valid,
    input  wire         m0_ready,
    output wire [W-1:0] m0_data,
    output wire         m1_valid,
    input  wire         m1_ready,
    output wire [W-1:0] m1_data
);
    // elaboration-time parameter checks (an unknown module stops every tool)
    generate
        if (!(W >= 1)) begin : g_bad_w
            cf_fork_needs_W_at_least_1 u_bad ();
        end
    endgenerate

    reg [W-1:0] e0, e1;            // the two entries
    reg         wp;                // entry the next beat is written to
    reg         rp0, rp1;          // oldest entry output 0 / 1 has not taken
    reg [1:0]   n0, n1;            // beats output 0 / 1 has not taken (0..2)

    assign s_ready  = !n0[1] && !n1[1];
    assign m0_valid = (n0 != 2'd0);
    assign m1_valid = (n1 != 2'd0);
    assign m0_data  = rp0 ? e1 : e0;
    assign m1_data  = rp1 ? e1 : e0;

    wire push = s_valid && s_ready;
    wire pop0 = m0_ready && m0_valid;
    wire pop1 = m1_ready && m1_valid;

    always @(posedge clk) begin
        if (push && !wp) e0 <= s_data;
        if (push && wp)  e1 <= s_data;
    end
    always @(posedge clk) begin
        if (rst) begin
            wp <= 1'b0; rp0 <= 1'b0; rp1 <= 1'b0; n0 <= 2'd0; n1 <= 2'd0;
        end else begin
            if (push) wp  <= !wp;
            if (pop0) rp0 <= !rp0;
            if (pop1) rp1 <= !rp1;
            if (push && !pop0)      n0 <= n0 + 2'd1;
            else if (pop0 && !push) n0 <= n0 - 2'd1;
            if (push && !pop1)      n1 <= n1 + 2'd1;
            else if (pop1 && !push) n1 <= n1 - 2'd1;
        end
    end
endmodule
`default_nettype wire
