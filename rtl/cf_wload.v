// cf_wload: the weight loader of a build with run-time weights (docs/WEIGHTS.md).
//
// Input : s_axis, 32-bit words (TDATA / TVALID / TREADY; the top ignores TLAST).
//         The stream has no header: the layout is compile time. NMEM memories in
//         stream order; memory m has DEPTHS[m*32 +: 32] words, each sent as
//         CHUNKS[m*32 +: 32] 32-bit chunks, least significant first (the last one
//         zero-padded), addresses 0 .. depth-1 in order.
// Writes: one registered write per word, the cycle after its last chunk: wr_en is
//         one-hot (bit m: memory m), wr_addr the word's address, wr_data the word
//         (WMAX bits, the widest memory's width; a narrower memory takes the low
//         bits). wr_data holds the chunks as they arrive: a memory must sample it
//         on the cycle wr_en is high (every cf_ram / unit write port does).
// Status: after the last word of the last memory, m_axis answers two words, the
//         Fletcher sums of the load's words (generator/hw/weights.py: fletcher):
//         s1 = sum of the words, then s2 = sum of the running s1 (TLAST on s2),
//         both mod 2^32. While the status waits for m_axis_tready, s_axis_tready
//         is low.
// loaded: high from the cycle after the last word's write until the first word of
//         the next load (a word after a completed load starts a new one: loaded
//         falls). The generated top holds the frame input until it is high.
//         Reset: rst restarts the stream position and drops a pending status; it
//         does not change loaded (the memories are not reset either): a load cut
//         by rst leaves it low (it fell at that load's first word), a completed
//         one high. loaded is 0 at power-up (its initial value).
// Every output is a register; s_axis_tready depends on registers (and rst) only.
`default_nettype none
module cf_wload #(
    parameter NMEM = 1,
    parameter WMAX = 32,
    parameter AW   = 1,
    parameter [NMEM*32-1:0] DEPTHS = 32'd1,
    parameter [NMEM*32-1:0] CHUNKS = 32'd1
) (
    input  wire            clk,
    input  wire            rst,
    input  wire [31:0]     s_axis_tdata,
    input  wire            s_axis_tvalid,
    output wire            s_axis_tready,
    output wire [31:0]     m_axis_tdata,
    output wire            m_axis_tvalid,
    input  wire            m_axis_tready,
    output wire            m_axis_tlast,
    output reg  [NMEM-1:0] wr_en,
    output reg  [AW-1:0]   wr_addr,
    output wire [WMAX-1:0] wr_data,
    output reg             loaded
);
    localparam CMAX = (WMAX + 31) / 32;            // chunks of the widest word
    localparam CW   = (CMAX > 1) ? $clog2(CMAX) : 1;
    localparam MW   = (NMEM > 1) ? $clog2(NMEM) : 1;

    // elaboration-time parameter checks (an unknown module stops every tool)
    genvar gm, gc;
    generate
        if (!(NMEM >= 1 && WMAX >= 1 && AW >= 1 && AW <= 30)) begin : g_bad_size
            cf_wload_needs_NMEM_and_WMAX_at_least_1_and_AW_1_to_30 u_bad ();
        end
        for (gm = 0; gm < NMEM; gm = gm + 1) begin : g_check
            localparam [31:0] D = DEPTHS[gm*32 +: 32];
            localparam [31:0] N = CHUNKS[gm*32 +: 32];
            if (!(D >= 1 && (AW > 30 || D <= (32'd1 << AW)) && N >= 1 && N <= CMAX)) begin : g_bad_layout
                cf_wload_needs_every_DEPTH_1_to_2_pow_AW_and_CHUNKS_1_to_WMAX_over_32 u_bad ();
            end
        end
    endgenerate

    /* verilator lint_off WIDTHTRUNC */
    localparam [MW-1:0] M_LAST = NMEM - 1;
    /* verilator lint_on WIDTHTRUNC */

    // the layout of memory `mn`: its last address and last chunk
    reg  [MW-1:0] mn;
    reg  [31:0]   dn, cn;
    integer i;
    always @* begin
        dn = 32'd1;
        cn = 32'd1;
        for (i = 0; i < NMEM; i = i + 1) begin
            if (mn == i[MW-1:0]) begin
                dn = DEPTHS[i*32 +: 32];
                cn = CHUNKS[i*32 +: 32];
            end
        end
    end
    wire [31:0] dn1 = dn - 32'd1;
    wire [31:0] cn1 = cn - 32'd1;

    reg  [MW-1:0] m;              // memory of the next chunk
    reg  [AW-1:0] a;              // its address
    reg  [CW-1:0] c;              // its chunk
    reg  [AW-1:0] a_last;         // memory m's last address
    reg  [CW-1:0] c_last;         // memory m's last chunk
    reg           busy;           // a load is in progress (a word received, not all)
    reg           fin;            // the last word's write is on the port this cycle
    reg  [1:0]    st;             // status: 0 none, 1 s1 pending, 2 s2 pending
    reg  [31:0]   s1, s2;

    assign s_axis_tready = (st == 2'd0) && !rst;     // nothing is taken during reset
    wire take     = s_axis_tvalid && s_axis_tready;
    wire end_word = (c == c_last);
    wire end_mem  = end_word && (a == a_last);
    wire end_load = end_mem && (m == M_LAST);
    // the memory whose layout the limit registers load: the next one at a memory
    // change, memory 0 at reset and after the last memory
    always @* begin
        mn = (take && end_mem && !end_load) ? m + 1'b1 : {MW{1'b0}};
    end
    reg [NMEM-1:0] m_hot;         // memory m, one-hot
    integer j;
    always @* begin
        for (j = 0; j < NMEM; j = j + 1) m_hot[j] = (m == j[MW-1:0]);
    end
    wire [31:0] s1_next = (busy ? s1 : 32'd0) + s_axis_tdata;
    wire [31:0] s2_next = (busy ? s2 : 32'd0) + s1_next;

    // loaded: falls at a load's first word, rises with its last word's write (that write
    // happens whatever rst says: the memories are not reset)
    always @(posedge clk) begin
        if (take && !busy) loaded <= 1'b0;
        else if (fin)      loaded <= 1'b1;
    end
    always @(posedge clk) begin
        if (rst) begin
            m <= {MW{1'b0}}; a <= {AW{1'b0}}; c <= {CW{1'b0}};
            a_last <= dn1[AW-1:0]; c_last <= cn1[CW-1:0];   // memory 0 (busy falls)
            busy <= 1'b0; fin <= 1'b0; st <= 2'd0;
            wr_en <= {NMEM{1'b0}};
        end else begin
            wr_en <= {NMEM{1'b0}};
            fin   <= 1'b0;
            if (take) begin
                busy <= !end_load;
                s1 <= s1_next;
                s2 <= s2_next;
                if (end_word) begin
                    wr_en   <= m_hot;
                    wr_addr <= a;
                    c <= {CW{1'b0}};
                    if (end_mem) begin
                        a <= {AW{1'b0}};
                        m <= end_load ? {MW{1'b0}} : m + 1'b1;
                        a_last <= dn1[AW-1:0];
                        c_last <= cn1[CW-1:0];
                    end else begin
                        a <= a + 1'b1;
                    end
                    if (end_load) begin
                        fin <= 1'b1;
                        st  <= 2'd1;
                    end
                end else begin
                    c <= c + 1'b1;
                end
            end
            if (m_axis_tvalid && m_axis_tready) st <= (st == 2'd1) ? 2'd2 : 2'd0;
        end
    end

    // the word being assembled: chunk k is kept in its own register
    generate
        for (gc = 0; gc < CMAX; gc = gc + 1) begin : g_chunk
            /* verilator lint_off WIDTHTRUNC */
            localparam [CW-1:0] K = gc;
            /* verilator lint_on WIDTHTRUNC */
            localparam LO = gc * 32;
            localparam NB = (WMAX - LO < 32) ? (WMAX - LO) : 32;
            reg [31:0] r;
            always @(posedge clk) begin
                if (take && c == K) r <= s_axis_tdata;
            end
            assign wr_data[LO +: NB] = r[NB-1:0];
            if (NB < 32) begin : g_pad
                wire unused_pad = &{1'b0, r[31:NB]};
            end
        end
    endgenerate

    assign m_axis_tvalid = (st != 2'd0);
    assign m_axis_tlast  = (st == 2'd2);
    assign m_axis_tdata  = (st == 2'd2) ? s2 : s1;

    initial loaded = 1'b0;
    wire unused = &{1'b0, dn1[31:AW], cn1[31:CW]};
endmodule
`default_nettype wire
