// cf_fifo: synchronous stream FIFO (valid/ready on both sides).
//
// DEPTH must be 1 or a power of two. Storage is a plain register array
// (distributed RAM / LUTRAM after synthesis); the output is read from the
// head entry, so m_valid, m_data and s_ready all come from registers: there
// is no combinational path from s_valid to m_valid or from m_ready to s_ready.
// Latency 1 cycle, throughput 1 beat/cycle for DEPTH >= 2.
// DEPTH 1 is a single register slot (no read multiplexer, no LUT RAM): one
// beat per 2 cycles, for wide outputs produced every many cycles, where a
// 2-deep LUT-RAM FIFO would cost 2/3 LUT per bit.
// `count` is exported so that producers can do credit-based flow control.
`default_nettype none
module cf_fifo #(
    parameter W     = 8,
    parameter DEPTH = 2
) (
    input  wire                       clk,
    input  wire                       rst,
    input  wire                       s_valid,
    output wire                       s_ready,
    input  wire [W-1:0]               s_data,
    output wire                       m_valid,
    input  wire                       m_ready,
    output wire [W-1:0]               m_data,
    output wire [$clog2(DEPTH+1)-1:0] count
);
    // elaboration-time parameter checks (an unknown module stops every tool)
    generate
        if (!(W >= 1)) begin : g_bad_w
            cf_fifo_needs_W_at_least_1 u_bad ();
        end
        if (!(DEPTH >= 1 && (DEPTH & (DEPTH - 1)) == 0)) begin : g_bad_depth
            cf_fifo_needs_DEPTH_1_or_a_power_of_2 u_bad ();
        end
    endgenerate

    localparam CW = $clog2(DEPTH + 1);
    generate
        if (DEPTH == 1) begin : g_slot
            reg [W-1:0] slot;
            reg         full;
            assign s_ready = !full;
            assign m_valid = full;
            assign m_data  = slot;
            assign count   = full;
            always @(posedge clk) begin
                if (s_valid && !full) slot <= s_data;
            end
            always @(posedge clk) begin
                if (rst)                    full <= 1'b0;
                else if (s_valid && !full)  full <= 1'b1;
                else if (m_ready && full)   full <= 1'b0;
            end
        end else begin : g_ram
            localparam AW = (DEPTH > 1) ? $clog2(DEPTH) : 1;

            reg [W-1:0]  mem [0:DEPTH-1];
            reg [AW-1:0] wp, rp;
            reg [CW-1:0] cnt;

            wire push = s_valid && (cnt != DEPTH[CW-1:0]);
            wire pop  = m_ready && (cnt != {CW{1'b0}});

            assign s_ready = (cnt != DEPTH[CW-1:0]);
            assign m_valid = (cnt != {CW{1'b0}});
            assign m_data  = mem[rp];
            assign count   = cnt;

            always @(posedge clk) begin
                if (push) mem[wp] <= s_data;
            end

            always @(posedge clk) begin
                if (rst) begin
                    wp  <= {AW{1'b0}};
                    rp  <= {AW{1'b0}};
                    cnt <= {CW{1'b0}};
                end else begin
                    if (push) wp <= wp + 1'b1;
                    if (pop)  rp <= rp + 1'b1;
                    if (push && !pop) cnt <= cnt + 1'b1;
                    else if (pop && !push) cnt <= cnt - 1'b1;
                end
            end
        end
    endgenerate
endmodule
`default_nettype wire
