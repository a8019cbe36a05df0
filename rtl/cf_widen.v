// cf_widen: tap-parallel width converter with replay, between cf_swg and cf_mvu.
//
// Lets a convolution take several window taps per cycle (SIMD = R * C_in, R
// dividing K*K) while the window generator emits whole pixels (cf_swg with
// SIMD = C_in, NF = 1: K*K beats per output pixel).
//
// Input : IW-bit narrow beats (one tap: C_in channels), R*SF per window.
// Output: per window, NF times over sf = 0 .. SF-1 (nf-major, sf-minor), the
//         wide beat sf = narrow beats sf*R .. sf*R+R-1, the first in the
//         lowest bits: the SIMD-element chunks cf_mvu consumes (column order
//         (ky, kx, c), c fastest, is the window generator's emission order).
//
// Two registers, no wide multiplexers:
//   * collect: an R*SF*IW-bit shift register; a narrow beat is shifted in at
//     the top (plain shift with enable), so after R*SF beats the first sits
//     in the lowest bits;
//   * hold: loaded in parallel from the full collect register when the hold
//     is empty or its last beat (nf = NF-1, sf = SF-1) leaves in this cycle;
//     m_data = chunk sf of the hold (an SF:1 multiplexer, none when SF = 1).
// s_ready = !full || !hold_valid and m_valid = hold_valid come from registers
// (never from m_ready): a full collect register accepts the next beat in the
// cycle it is moved into an empty hold, otherwise one cycle after the move.
// Cycles per window with an input beat every cycle and the output always
// ready (M = R*SF input beats, N = NF*SF output beats): N when N > M, M when
// N < M, and alternately M and M+1 when N = M (generator/hw/units/common.py, Widen).
`default_nettype none
module cf_widen #(
    parameter IW = 8,
    parameter R  = 2,
    parameter SF = 2,
    parameter NF = 2
) (
    input  wire            clk,
    input  wire            rst,
    input  wire            s_valid,
    output wire            s_ready,
    input  wire [IW-1:0]   s_data,
    output wire            m_valid,
    input  wire            m_ready,
    output wire [R*IW-1:0] m_data
);
    // elaboration-time parameter checks (an unknown module stops every tool)
    generate
        if (!(IW >= 1 && R >= 1 && SF >= 1 && NF >= 1)) begin : g_bad_size
            cf_widen_needs_IW_R_SF_NF_at_least_1 u_bad ();
        end
    endgenerate

    localparam OW  = R * IW;
    localparam N   = R * SF;                  // narrow beats per window
    localparam TW  = N * IW;
    localparam CW  = $clog2(N + 1);
    localparam SFW = (SF > 1) ? $clog2(SF) : 1;
    localparam NFW = (NF > 1) ? $clog2(NF) : 1;

    /* verilator lint_off WIDTHTRUNC */
    localparam [CW-1:0]  N_FULL  = N;
    localparam [SFW-1:0] SF_LAST = SF - 1;
    localparam [NFW-1:0] NF_LAST = NF - 1;
    /* verilator lint_on WIDTHTRUNC */

    reg [TW-1:0]  col;          // collect shift register
    reg [TW-1:0]  hold;         // the window being replayed
    reg [CW-1:0]  ccnt;         // narrow beats in col
    reg           hvalid;
    reg [SFW-1:0] sf;
    reg [NFW-1:0] nf;

    wire full = (ccnt == N_FULL);
    wire last = (sf == SF_LAST) && (nf == NF_LAST);
    wire pop  = hvalid && m_ready;
    wire load = full && (!hvalid || (m_ready && last));
    assign s_ready = !full || !hvalid;
    assign m_valid = hvalid;
    wire acc = s_valid && s_ready;

    // ------------------------------------------------------------- collect
    generate
        if (N == 1) begin : g_one
            always @(posedge clk) if (acc) col <= s_data;
        end else begin : g_shift
            always @(posedge clk) if (acc) col <= {s_data, col[TW-1:IW]};
        end
    endgenerate

    always @(posedge clk) begin
        if (rst) ccnt <= {CW{1'b0}};
        else if (load) ccnt <= acc ? {{(CW-1){1'b0}}, 1'b1} : {CW{1'b0}};
        else if (acc) ccnt <= ccnt + 1'b1;
    end

    // ---------------------------------------------------------------- hold
    always @(posedge clk) if (load) hold <= col;

    always @(posedge clk) begin
        if (rst) begin
            hvalid <= 1'b0;
            sf <= {SFW{1'b0}};
            nf <= {NFW{1'b0}};
        end else begin
            if (load) hvalid <= 1'b1;
            else if (pop && last) hvalid <= 1'b0;
            // the counters wrap to 0 on the last beat, so a new window starts at 0
            if (pop) begin
                if (sf != SF_LAST) sf <= sf + 1'b1;
                else begin
                    sf <= {SFW{1'b0}};
                    nf <= (nf != NF_LAST) ? nf + 1'b1 : {NFW{1'b0}};
                end
            end
        end
    end

    generate
        if (SF == 1) begin : g_whole
            assign m_data = hold;
        end else begin : g_chunk
            // an array indexed by sf: an SF:1 multiplexer per bit (cf. cf_swg)
            wire [OW-1:0] chunks [0:SF-1];
            genvar gc;
            for (gc = 0; gc < SF; gc = gc + 1) begin : g_c
                assign chunks[gc] = hold[gc*OW +: OW];
            end
            assign m_data = chunks[sf];
        end
    endgenerate
endmodule
`default_nettype wire
