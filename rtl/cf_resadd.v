// cf_resadd: residual add, the join of a residual block's body (a) and shortcut (b).
//
//   z_c   = ma[c] * a_c + mb[c] * b_c + bias[c]     (ZW-bit signed: holds every z)
//   y_c   = z_c >>> SH                              (arithmetic shift: floor)
//   out_c = RELU ? max(0, y_c) : y_c                OB-bit two's complement
//
// Input : one whole pixel per beat on each of a (C values of AB bits, ASIGNED: two's
//         complement) and b (C values of BB bits, BSIGNED); channel c at [c*AB +: AB].
// Output: one pixel per beat, C values of OB bits. The ranges are the generator's
//         (docs/ARITHMETIC.md): z fits ZW bits, y fits OB bits, so the sums are taken
//         modulo 2^ZW and nothing saturates.
// Folded over channels: SIMD lanes of two multiplies and a three-input sum; a pixel takes
// CF = C/SIMD cycles, chunk j (channels j*SIMD ...) in cycle j: the a beat is accepted
// with chunk 0 (its other chunks registered), the b beat, which always comes from the
// shortcut FIFO, with the last chunk (read in place). PFILE holds CF words, word j = SIMD
// lanes of three PW-bit fields, PW = max(MW, BW): lane l (channel j*SIMD + l) has ma at
// field 3l, mb at 3l+1, the bias at 3l+2 (two's complement).
// WRT (run-time weights, docs/WEIGHTS.md): 0 = the parameters are a ROM initialised
// from PFILE (tie wr_* to 0); 1 = a RAM without initial contents: wr_en writes word
// wr_addr from the low bits of wr_data (LA >= its address width, LD >= SIMD*3*PW).
// Pipeline: S0 (issue: chunk select, parameter read) -> S1 (products) -> S2 (sum, shift,
// ReLU, assembly, push into the output FIFO). The pipeline stalls as a whole only when
// the beat completing a pixel finds the output FIFO full (its registered count): a_ready
// and b_ready depend on the other input's valid and on registers, never on m_ready. One
// pixel per cycle at SIMD = C with the FIFO's 2 entries (credits for pixels in flight
// would need FD >= 4 for that); from both inputs valid to the output valid: CF + 2 cycles.
`default_nettype none
module cf_resadd #(
    parameter C       = 4,
    parameter SIMD    = 2,
    parameter AB      = 8,
    parameter ASIGNED = 1,
    parameter BB      = 8,
    parameter BSIGNED = 0,
    parameter MW      = 8,
    parameter BW      = 12,
    parameter ZW      = 20,
    parameter SH      = 4,
    parameter OB      = 16,
    parameter RELU    = 1,
    parameter FD      = 2,
    parameter PFILE   = "",
    parameter WRT     = 0,
    parameter LA      = 1,
    parameter LD      = 1
) (
    input  wire            clk,
    input  wire            rst,
    input  wire            a_valid,
    output wire            a_ready,
    input  wire [C*AB-1:0] a_data,
    input  wire            b_valid,
    output wire            b_ready,
    input  wire [C*BB-1:0] b_data,
    output wire            m_valid,
    input  wire            m_ready,
    output wire [C*OB-1:0] m_data,
    input  wire            wr_en,       // WRT 1: the parameters
    input  wire [LA-1:0]   wr_addr,
    input  wire [LD-1:0]   wr_data
);
    // elaboration-time parameter checks (an unknown module stops every tool)
    generate
        if (!(C >= 1 && AB >= 1 && BB >= 1 && MW >= 1 && BW >= 1 && ZW >= 1 && OB >= 1)) begin : g_bad_size
            cf_resadd_needs_C_AB_BB_MW_BW_ZW_OB_at_least_1 u_bad ();
        end
        if (!(SIMD >= 1 && C % SIMD == 0)) begin : g_bad_simd
            cf_resadd_needs_SIMD_dividing_C u_bad ();
        end
        if (!((ASIGNED == 0 || ASIGNED == 1) && (BSIGNED == 0 || BSIGNED == 1) && (RELU == 0 || RELU == 1))) begin : g_bad_flags
            cf_resadd_needs_ASIGNED_BSIGNED_RELU_0_or_1 u_bad ();
        end
        if (!(SH >= 0)) begin : g_bad_sh
            cf_resadd_needs_SH_at_least_0 u_bad ();
        end
        if (!(FD >= 1 && (FD & (FD - 1)) == 0)) begin : g_bad_fd
            cf_resadd_needs_FD_1_or_a_power_of_2 u_bad ();
        end
    endgenerate

    // divisors and widths kept >= 1 (the checks above refuse smaller values): a refused
    // instance still elaborates far enough to name its rule
    localparam SIMD1 = (SIMD > 0) ? SIMD : 1;
    localparam CF    = (C >= SIMD1) ? C / SIMD1 : 1;
    localparam CFW   = (CF > 1) ? $clog2(CF) : 1;
    localparam PW    = (MW > BW) ? MW : BW;
    localparam LW    = 3 * PW;                 // one lane of a parameter word
    localparam PAW   = MW + AB + 1;            // ma * a (a extended to AB+1 signed bits)
    localparam PBW   = MW + BB + 1;
    localparam SH0   = (SH > 0) ? SH : 0;
    localparam YW    = (SH0 < ZW) ? ZW - SH0 : 1;   // width of y = z >>> SH
    localparam FCW   = $clog2(FD + 1);
    /* verilator lint_off WIDTHTRUNC */
    localparam [CFW-1:0] CF_LAST = CF - 1;
    localparam [FCW-1:0] FDS     = FD;
    /* verilator lint_on WIDTHTRUNC */

    // ------------------------------------------------------------ S0: issue
    // chunk 0 of a pixel is issued with both inputs valid: the a beat is accepted then and
    // its other chunks kept in `ahold` (its producer's output FIFO may be a single slot);
    // the b beat stays at the head of the shortcut FIFO and is accepted with the last chunk
    reg  [CFW-1:0] cf;                      // chunk of the current pixel
    wire first_cf = (cf == {CFW{1'b0}});
    wire last_cf  = (cf == CF_LAST);
    wire adv;                               // the pipeline moves
    wire have_a = a_valid || !first_cf;
    wire go = b_valid && have_a && adv;     // chunk cf issued
    assign a_ready = first_cf && b_valid && adv;
    assign b_ready = last_cf && have_a && adv;

    wire [SIMD*AB-1:0] achunk;
    wire [SIMD*BB-1:0] bchunk;
    generate
        if (CF == 1) begin : g_whole
            assign achunk = a_data;
            assign bchunk = b_data;
        end else begin : g_chunks
            reg  [C*AB-SIMD*AB-1:0] ahold;      // chunks 1 .. CF-1 of the accepted a beat
            wire [SIMD*AB-1:0] ach [0:CF-1];
            wire [SIMD*BB-1:0] bch [0:CF-1];
            genvar j;
            assign ach[0] = a_data[SIMD*AB-1:0];
            for (j = 1; j < CF; j = j + 1) begin : g_ja
                assign ach[j] = ahold[(j-1)*SIMD*AB +: SIMD*AB];
            end
            for (j = 0; j < CF; j = j + 1) begin : g_jb
                assign bch[j] = b_data[j*SIMD*BB +: SIMD*BB];
            end
            always @(posedge clk) begin
                if (a_valid && a_ready) ahold <= a_data[C*AB-1:SIMD*AB];
            end
            assign achunk = ach[cf];
            assign bchunk = bch[cf];
        end
    endgenerate

    always @(posedge clk) begin
        if (rst) cf <= {CFW{1'b0}};
        else if (go) cf <= last_cf ? {CFW{1'b0}} : cf + 1'b1;
    end

    // ------------------------------------------------------------ S1: products
    reg               v1, last1;
    reg [SIMD*AB-1:0] a1;
    reg [SIMD*BB-1:0] b1;
    wire [SIMD*LW-1:0] p1;                  // parameter word of chunk cf (cf_rom, read on go)
    always @(posedge clk) begin
        if (go) begin
            a1 <= achunk; b1 <= bchunk; last1 <= last_cf;
        end
    end
    always @(posedge clk) begin
        if (rst)      v1 <= 1'b0;
        else if (adv) v1 <= go;
    end
    generate
        if (!(WRT == 0 || (WRT == 1 && LA >= CFW && LD >= SIMD*LW))) begin : g_bad_wrt
            cf_resadd_needs_WRT_0_or_1_with_LA_LD_holding_the_parameters u_bad ();
        end
        if (WRT == 1) begin : g_pram
            cf_ram #(.W(SIMD*LW), .DEPTH(CF), .STYLE(0)) u_pram (
                .clk(clk), .en(go), .addr(cf), .q(p1),
                .we(wr_en), .waddr(wr_addr[CFW-1:0]), .wdata(wr_data[SIMD*LW-1:0]));
        end else begin : g_prom
            cf_rom #(.W(SIMD*LW), .DEPTH(CF), .FILE(PFILE), .STYLE(0)) u_prom (
                .clk(clk), .en(go), .addr(cf), .q(p1));
        end
    endgenerate
    wire unused_wr = &{1'b0, wr_en, wr_addr, wr_data};

    wire [SIMD*ZW-1:0] pa1, pb1, bias1;     // ma*a, mb*b, bias modulo 2^ZW
    genvar l;
    generate
        for (l = 0; l < SIMD; l = l + 1) begin : g_mul
            wire signed [MW-1:0] ma = p1[(3*l)*PW +: MW];
            wire signed [MW-1:0] mb = p1[(3*l+1)*PW +: MW];
            wire        [BW-1:0] bv = p1[(3*l+2)*PW +: BW];
            wire [AB-1:0] ax = a1[l*AB +: AB];
            wire [BB-1:0] bx = b1[l*BB +: BB];
            wire signed [AB:0] av = {(ASIGNED != 0) & ax[AB-1], ax};
            wire signed [BB:0] bvx = {(BSIGNED != 0) & bx[BB-1], bx};
            wire signed [PAW-1:0] pa = ma * av;
            wire signed [PBW-1:0] pb = mb * bvx;
            if (PAW >= ZW) begin : g_pa_cut
                assign pa1[l*ZW +: ZW] = pa[ZW-1:0];
                if (PAW > ZW) begin : g_unused
                    wire unused_pa = &{1'b0, pa[PAW-1:ZW]};
                end
            end else begin : g_pa_ext
                assign pa1[l*ZW +: ZW] = {{(ZW-PAW){pa[PAW-1]}}, pa};
            end
            if (PBW >= ZW) begin : g_pb_cut
                assign pb1[l*ZW +: ZW] = pb[ZW-1:0];
                if (PBW > ZW) begin : g_unused
                    wire unused_pb = &{1'b0, pb[PBW-1:ZW]};
                end
            end else begin : g_pb_ext
                assign pb1[l*ZW +: ZW] = {{(ZW-PBW){pb[PBW-1]}}, pb};
            end
            if (BW >= ZW) begin : g_b_cut
                assign bias1[l*ZW +: ZW] = bv[ZW-1:0];
                if (BW > ZW) begin : g_unused
                    wire unused_b = &{1'b0, bv[BW-1:ZW]};
                end
            end else begin : g_b_ext
                assign bias1[l*ZW +: ZW] = {{(ZW-BW){bv[BW-1]}}, bv};
            end
            // the fields' bits above MW / BW (PW = max(MW, BW)) are sign copies
            if (PW > MW) begin : g_unused_m
                wire unused_m = &{1'b0, p1[(3*l)*PW+MW +: PW-MW], p1[(3*l+1)*PW+MW +: PW-MW]};
            end
            if (PW > BW) begin : g_unused_bias
                wire unused_bias = &{1'b0, p1[(3*l+2)*PW+BW +: PW-BW]};
            end
        end
    endgenerate

    // ------------------------------------------------------------ S2: sum, shift, ReLU
    reg               v2, last2;
    reg [SIMD*ZW-1:0] pa2, pb2, bias2;
    always @(posedge clk) begin
        if (adv && v1) begin
            pa2 <= pa1; pb2 <= pb1; bias2 <= bias1; last2 <= last1;
        end
    end
    always @(posedge clk) begin
        if (rst)      v2 <= 1'b0;
        else if (adv) v2 <= v1;
    end

    wire [SIMD*OB-1:0] lanes;
    generate
        for (l = 0; l < SIMD; l = l + 1) begin : g_sum
            wire [ZW-1:0] z = pa2[l*ZW +: ZW] + pb2[l*ZW +: ZW] + bias2[l*ZW +: ZW];
            wire [YW-1:0] y;
            if (SH0 == 0) begin : g_sh0
                assign y = z;
            end else if (SH0 < ZW) begin : g_sh
                assign y = z[ZW-1:SH0];
                wire unused_z = &{1'b0, z[SH0-1:0]};
            end else begin : g_sh_all       // |z| < 2^SH: floor is -1 or 0
                assign y = z[ZW-1];
                if (ZW > 1) begin : g_unused
                    wire unused_z = &{1'b0, z[ZW-2:0]};
                end
            end
            wire neg = (RELU != 0) & y[YW-1];
            if (OB >= YW) begin : g_ext
                assign lanes[l*OB +: OB] = neg ? {OB{1'b0}} : {{(OB-YW){y[YW-1]}}, y};
            end else begin : g_cut           // the generator sizes OB to hold every y
                assign lanes[l*OB +: OB] = neg ? {OB{1'b0}} : y[OB-1:0];
            end
        end
    endgenerate

    // output pixel: chunks shifted in from the top, chunk 0 ends lowest
    wire [C*OB-1:0] pixel;
    generate
        if (CF == 1) begin : g_one
            assign pixel = lanes;
        end else begin : g_many
            reg [C*OB-SIMD*OB-1:0] asmb;
            assign pixel = {lanes, asmb};
            always @(posedge clk) begin
                if (adv && v2) asmb <= pixel[C*OB-1:SIMD*OB];
            end
        end
    endgenerate

    wire [FCW-1:0] fcount;
    wire full = (fcount == FDS);
    assign adv = !(v2 && last2 && full);
    wire push = v2 && last2 && !full;

    wire fifo_s_ready;   // 1 on push: push waits for a free entry
    cf_fifo #(.W(C*OB), .DEPTH(FD)) u_out (
        .clk(clk), .rst(rst),
        .s_valid(push), .s_ready(fifo_s_ready), .s_data(pixel),
        .m_valid(m_valid), .m_ready(m_ready), .m_data(m_data),
        .count(fcount));
    wire unused = &{1'b0, fifo_s_ready};
endmodule
`default_nettype wire
