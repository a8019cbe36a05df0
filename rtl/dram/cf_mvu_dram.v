// cf_mvu_dram: binary (xnor) fully-connected matrix unit whose weights arrive on a stream
// (from DRAM, cf_axi_wread) instead of a ROM, batched: every weight word is used for the B
// frames of a batch before the next word is taken, so the weights cross the DRAM port once
// per B frames (generator/hw/dram.py owns the model).
//
// Input : one frame = KD/CI pixels of CI bits (raster order), the layer's whole input map:
//         vector element j = pixel*CI + c (the (ky, kx, c) tap order of a window k = H = W).
//         Each pixel is written as CPP = CI/SIMD chunks into the batch buffer: two halves of
//         B frames x SF = KD/SIMD chunks (one pixel per CPP cycles; a half is written while
//         the other is computed on).
// Weights: NW = NF*SF words of PE*SIMD bits per batch (NF = CO/PE), fold-major, word
//         nf*SF + sf lane p at [p*SIMD +: SIMD] = the weights of output channel nf*PE + p,
//         elements [sf*SIMD, (sf+1)*SIMD) (cf_mvu's WMEM order): the same word sequence
//         every batch.
// Compute: per word, B cycles, cycle b computing frame b's chunk sf against it: per PE
//         popcount(~(x ^ w)), summed over the SF chunks of a fold in one of B accumulator
//         sets (a ring that rotates one set per beat: the beat of frame b finds frame b's
//         set at its head). The activation (cf_mvu's xnor arithmetic and parameter layout:
//         ACT 0 threshold on pc with {d, t} lanes, ACT 1 relu_offset on acc = 2*pc - KD)
//         writes PE*OB bits per (frame, fold) into the output buffer (two halves of B
//         frames x NF folds). B*NW cycles per batch when the weights keep up.
// Output: a finished half is read out frame by frame, NF words shifted into the output
//         register: one CO*OB-bit beat per frame (channel o at [o*OB +: OB]), held until
//         taken (a frame every NF + 2 cycles at most; NF <= the interval).
// Frames leave in batches: a frame waits for the B-1 frames after it.
// PMEM word nf holds the PE {flag, value} lanes of fold nf, lane p at [p*(TW+1) +: TW+1].
// PIPE (timing, chosen from the clock by the folding as cf_mvu's): 0 = as below; 1 = the
//         chunk and the weight word registered once more before the popcounts (the batch
//         buffer's block-RAM clock-to-out no longer starts them): one cycle more latency,
//         the same rate and results.
// Pipeline: A (issue: batch-buffer read, weight register) -> [R (PIPE 1)] -> B (popcounts) -> C (ring
// accumulate, parameter read) -> D (activation, output-buffer write); E (output-buffer
// read) -> output register. s_ready, w_ready and m_valid come from registers.
`default_nettype none
module cf_mvu_dram #(
    parameter SIMD  = 4,
    parameter PE    = 2,
    parameter KD    = 16,     // vector length (k*k*C_in)
    parameter CO    = 4,
    parameter CI    = 8,      // input pixel bits (channels)
    parameter B     = 2,      // batch
    parameter ACT   = 0,
    parameter OB    = 1,
    parameter TW    = 8,
    parameter FRAC  = 0,
    parameter PIPE  = 0,      // 1: a register stage between the buffer reads and the popcounts
    parameter PFILE = ""
) (
    input  wire                 clk,
    input  wire                 rst,
    input  wire                 s_valid,
    output wire                 s_ready,
    input  wire [CI-1:0]        s_data,
    input  wire                 w_valid,
    output wire                 w_ready,
    input  wire [PE*SIMD-1:0]   w_data,
    output wire                 m_valid,
    input  wire                 m_ready,
    output wire [CO*OB-1:0]     m_data
);
    // divisors kept >= 1 (the checks below refuse smaller values)
    localparam SIMD1 = (SIMD > 0) ? SIMD : 1;
    localparam PE1   = (PE > 0) ? PE : 1;
    localparam B1    = (B > 0) ? B : 1;
    localparam SF    = (KD / SIMD1 > 0) ? KD / SIMD1 : 1;
    localparam NF    = (CO / PE1 > 0) ? CO / PE1 : 1;
    localparam CPP   = (CI / SIMD1 > 0) ? CI / SIMD1 : 1;   // chunks per pixel
    localparam HB    = B1 * SF;                 // batch-buffer words per half
    localparam HO    = B1 * NF;                 // output-buffer words per half
    localparam IAW   = $clog2(2 * HB);
    localparam OAW   = $clog2(2 * HO);
    localparam HBW   = (HB > 1) ? $clog2(HB) : 1;
    localparam BW    = (B1 > 1) ? $clog2(B1) : 1;
    localparam SFW   = (SF > 1) ? $clog2(SF) : 1;
    localparam NFW   = (NF > 1) ? $clog2(NF) : 1;
    localparam CPW   = (CPP > 1) ? $clog2(CPP) : 1;
    localparam PRW   = TW + 1;
    localparam PCW   = $clog2(SIMD1 + 1);       // popcount of one chunk
    localparam CW    = $clog2(KD + 1) + 1;      // accumulator (cf_mvu's xnor CW)
    localparam OW    = PE1 * OB;                // one fold of one frame
    localparam OUTW  = CO * OB;
    localparam SAW   = CW + 2;
    localparam EW    = ((SAW + FRAC > TW) ? SAW + FRAC : TW) + 2;

    /* verilator lint_off WIDTHTRUNC */
    localparam [IAW-1:0] I_LAST  = 2 * HB - 1;
    localparam [IAW-1:0] I_HALF  = HB;
    localparam [IAW-1:0] I_SF    = SF;
    localparam [HBW-1:0] HB_LAST = HB - 1;
    localparam [OAW-1:0] O_LAST  = 2 * HO - 1;
    localparam [OAW-1:0] O_HALF  = HO;
    localparam [OAW-1:0] O_NF    = NF;
    localparam [BW-1:0]  B_LAST  = B1 - 1;
    localparam [SFW-1:0] SF_LAST = SF - 1;
    localparam [NFW-1:0] NF_LAST = NF - 1;
    localparam [CPW-1:0] CP_LAST = CPP - 1;
    /* verilator lint_on WIDTHTRUNC */

    // elaboration-time parameter checks (an unknown module stops every tool)
    generate
        if (!(KD >= 1 && CO >= 1 && CI >= 1 && B >= 1 && OB >= 1 && TW >= 1 && FRAC >= 0))
        begin : g_bad_size
            cf_mvu_dram_needs_KD_CO_CI_B_OB_TW_at_least_1_and_FRAC_at_least_0 u_bad ();
        end
        if (!(SIMD >= 1 && CI % SIMD == 0)) begin : g_bad_simd
            cf_mvu_dram_needs_SIMD_dividing_CI u_bad ();
        end
        if (!(CI >= 1 && KD % CI == 0)) begin : g_bad_ci
            cf_mvu_dram_needs_CI_dividing_KD u_bad ();
        end
        if (!(PE >= 1 && CO % PE == 0)) begin : g_bad_pe
            cf_mvu_dram_needs_PE_dividing_CO u_bad ();
        end
        if (!((ACT == 0 && OB == 1) || ACT == 1)) begin : g_bad_act
            cf_mvu_dram_needs_ACT_0_with_OB_1_or_ACT_1 u_bad ();
        end
        if (!(PIPE == 0 || PIPE == 1)) begin : g_bad_pipe
            cf_mvu_dram_needs_PIPE_0_or_1 u_bad ();
        end
    endgenerate

    // ------------------------------------------------------------ buffers
    reg [SIMD1-1:0] ibuf [0:2*HB-1];            // batch buffer: [half][frame][chunk]
    reg [OW-1:0]    obuf [0:2*HO-1];            // output buffer: [half][frame][fold]
    reg [PE1*PRW-1:0] pmem [0:NF-1];
    initial begin
        if (PFILE != "") $readmemh(PFILE, pmem);
    end
    reg [1:0] ifull;    // batch-buffer half written, not yet computed
    reg [1:0] obusy;    // output-buffer half taken by a batch, not yet read out
    reg [1:0] ofull;    // output-buffer half complete, not yet read out

    // ------------------------------------------------------------ input: pixels -> chunks
    reg  [IAW-1:0] wp;                  // write address (both halves)
    reg  [HBW-1:0] wcnt;                // words written into the current half
    reg            wh;                  // the half being written
    wire           pend;                // chunks 1 .. CPP-1 of the held pixel to write
    wire           wfree = !ifull[wh];
    assign s_ready = !pend && wfree;
    wire           acc_px = s_valid && s_ready;
    wire           wr_en = acc_px || pend;
    wire [SIMD1-1:0] wdata;
    genvar gp;
    generate
        if (CPP > 1) begin : g_split
            reg [CI-SIMD1-1:0] hold;    // the pixel's chunks still to write, chunk 1 lowest
            reg [CPW-1:0]      cc;
            reg                pend_q;
            assign pend  = pend_q;
            assign wdata = pend ? hold[SIMD1-1:0] : s_data[SIMD1-1:0];
            always @(posedge clk) begin
                if (acc_px) hold <= s_data[CI-1:SIMD1];
                else if (pend) hold <= hold >> SIMD1;
            end
            always @(posedge clk) begin
                if (rst) begin
                    pend_q <= 1'b0;
                    cc     <= {CPW{1'b0}};
                end else if (acc_px) begin
                    pend_q <= 1'b1;
                    cc     <= {{(CPW-1){1'b0}}, 1'b1};
                end else if (pend) begin
                    pend_q <= (cc != CP_LAST);
                    cc     <= cc + 1'b1;
                end
            end
        end else begin : g_whole
            assign pend  = 1'b0;
            assign wdata = s_data;
        end
    endgenerate
    always @(posedge clk) begin
        if (wr_en) ibuf[wp] <= wdata;
    end
    always @(posedge clk) begin
        if (rst) begin
            wp <= {IAW{1'b0}}; wcnt <= {HBW{1'b0}}; wh <= 1'b0;
        end else if (wr_en) begin
            wp   <= (wp == I_LAST) ? {IAW{1'b0}} : wp + 1'b1;
            wcnt <= (wcnt == HB_LAST) ? {HBW{1'b0}} : wcnt + 1'b1;
            if (wcnt == HB_LAST) wh <= ~wh;
        end
    end

    // ------------------------------------------------------------ stage A: issue
    reg            rh;                  // batch-buffer half being computed
    reg            ch;                  // output-buffer half this batch writes
    reg  [BW-1:0]  bc;
    reg  [SFW-1:0] sfc;
    reg  [NFW-1:0] nfc;
    reg  [IAW-1:0] rsf;                 // address of chunk sf of frame 0
    reg  [IAW-1:0] rp;                  // address of chunk sf of frame bc
    wire go = ifull[rh] && !obusy[ch];
    wire b0 = (bc == {BW{1'b0}});
    assign w_ready = go && b0;
    wire issue = go && (!b0 || w_valid);
    wire b_end  = (bc == B_LAST);
    wire sf_end = b_end && (sfc == SF_LAST);
    wire batch_end = sf_end && (nfc == NF_LAST);

    reg [SIMD1-1:0]   iq;               // the chunk (batch-buffer read register)
    reg [PE1*SIMD1-1:0] wq;             // the weight word, held for the B frames
    reg               vb, firstb, lastb, endb;
    reg [NFW-1:0]     nfb;
    always @(posedge clk) begin
        if (issue) iq <= ibuf[rp];
        if (issue && b0) wq <= w_data;
        if (issue) begin
            firstb <= (sfc == {SFW{1'b0}});
            lastb  <= (sfc == SF_LAST);
            endb   <= batch_end;
            nfb    <= nfc;
        end
    end
    always @(posedge clk) begin
        if (rst) begin
            rh <= 1'b0; ch <= 1'b0; bc <= {BW{1'b0}}; sfc <= {SFW{1'b0}}; nfc <= {NFW{1'b0}};
            rsf <= {IAW{1'b0}}; rp <= {IAW{1'b0}}; vb <= 1'b0;
        end else begin
            vb <= issue;
            if (issue) begin
                if (!b_end) begin
                    bc <= bc + 1'b1;
                    rp <= rp + I_SF;
                end else begin
                    bc <= {BW{1'b0}};
                    if (!sf_end) begin              // next chunk, frame 0
                        sfc <= sfc + 1'b1;
                        rsf <= rsf + 1'b1;
                        rp  <= rsf + 1'b1;
                    end else begin
                        sfc <= {SFW{1'b0}};
                        if (!batch_end) begin       // next fold, chunk 0 of frame 0
                            nfc <= nfc + 1'b1;
                            rsf <= rh ? I_HALF : {IAW{1'b0}};
                            rp  <= rh ? I_HALF : {IAW{1'b0}};
                        end else begin              // next batch, the other halves
                            nfc <= {NFW{1'b0}};
                            rh  <= ~rh;
                            ch  <= ~ch;
                            rsf <= rh ? {IAW{1'b0}} : I_HALF;
                            rp  <= rh ? {IAW{1'b0}} : I_HALF;
                        end
                    end
                end
            end
        end
    end

    // ------------------------------------------------------------ stage R (PIPE 1)
    wire [SIMD1-1:0]     xs;            // the beat as the popcounts see it
    wire [PE1*SIMD1-1:0] ws;
    wire                 vs, firsts, lasts, ends;
    wire [NFW-1:0]       nfs;
    generate
        if (PIPE == 1) begin : g_rreg
            reg [SIMD1-1:0]     x_q;
            reg [PE1*SIMD1-1:0] w_q;
            reg                 v_q, first_q, last_q, end_q;
            reg [NFW-1:0]       nf_q;
            always @(posedge clk) begin
                x_q <= iq; w_q <= wq;
                first_q <= firstb; last_q <= lastb; end_q <= endb; nf_q <= nfb;
            end
            always @(posedge clk) begin
                if (rst) v_q <= 1'b0;
                else     v_q <= vb;
            end
            assign xs = x_q, ws = w_q, vs = v_q, firsts = first_q, lasts = last_q;
            assign ends = end_q, nfs = nf_q;
        end else begin : g_rnone
            assign xs = iq, ws = wq, vs = vb, firsts = firstb, lasts = lastb;
            assign ends = endb, nfs = nfb;
        end
    endgenerate

    // ------------------------------------------------------------ stage B: popcounts
    wire [PE1*PCW-1:0] dot;
    generate
        for (gp = 0; gp < PE1; gp = gp + 1) begin : g_dot
            wire [SIMD1-1:0] m = ~(xs ^ ws[gp*SIMD1 +: SIMD1]);
            wire [31:0] pc = $countones(m);
            assign dot[gp*PCW +: PCW] = pc[PCW-1:0];
            wire unused_pc = &{1'b0, pc[31:PCW]};
        end
    endgenerate
    reg [PE1*PCW-1:0] dc;
    reg               vc, firstc, lastc, endc;
    reg [NFW-1:0]     nfc_c;
    always @(posedge clk) begin
        dc <= dot;
        firstc <= firsts; lastc <= lasts; endc <= ends; nfc_c <= nfs;
    end
    always @(posedge clk) begin
        if (rst) vc <= 1'b0;
        else     vc <= vs;
    end

    // ------------------------------------------------------------ stage C: B accumulator sets
    wire [PE1*CW-1:0] head;             // the set of the beat's frame
    wire [PE1*CW-1:0] sum;
    generate
        for (gp = 0; gp < PE1; gp = gp + 1) begin : g_acc
            wire [CW-1:0] prev = firstc ? {CW{1'b0}} : head[gp*CW +: CW];
            assign sum[gp*CW +: CW] = prev + {{(CW-PCW){1'b0}}, dc[gp*PCW +: PCW]};
        end
        if (B1 > 1) begin : g_ring
            reg [B1*PE1*CW-1:0] ring;   // set of frame b+i at [i*PE*CW +: PE*CW]
            assign head = ring[PE1*CW-1:0];
            always @(posedge clk) begin
                if (vc) ring <= {sum, ring[B1*PE1*CW-1:PE1*CW]};
            end
        end else begin : g_one
            reg [PE1*CW-1:0] ring;
            assign head = ring;
            always @(posedge clk) begin
                if (vc) ring <= sum;
            end
        end
    endgenerate
    reg [PE1*CW-1:0]  fd_;              // completed sums of one (frame, fold)
    reg [PE1*PRW-1:0] pd;
    reg               vd, endd;
    always @(posedge clk) begin
        if (vc && lastc) begin
            fd_  <= sum;
            pd   <= pmem[nfc_c];
            endd <= endc;
        end
    end
    always @(posedge clk) begin
        if (rst) vd <= 1'b0;
        else     vd <= vc && lastc;
    end

    // ------------------------------------------------------------ stage D: activation
    wire [OW-1:0] act;
    generate
        for (gp = 0; gp < PE1; gp = gp + 1) begin : g_act
            wire [CW-1:0] a = fd_[gp*CW +: CW];
            wire signed [TW-1:0] pv = pd[gp*PRW +: TW];
            wire pflag = pd[gp*PRW + TW];
            if (ACT == 0) begin : g_thr
                localparam CMW = ((CW > TW) ? CW : TW) + 1;
                wire signed [CMW-1:0] v = $signed({{(CMW-CW){1'b0}}, a});
                wire signed [CMW-1:0] t = $signed({{(CMW-TW){pv[TW-1]}}, pv});
                assign act[gp*OB +: OB] = pflag ? (v >= t) : (v <= t);
            end else begin : g_relu
                /* verilator lint_off WIDTHTRUNC */
                localparam signed [EW-1:0] KDS = KD;
                /* verilator lint_on WIDTHTRUNC */
                wire signed [EW-1:0] accs = $signed({{(EW-CW-1){1'b0}}, a, 1'b0}) - KDS;
                wire signed [EW-1:0] sgn = pflag ? accs : -accs;
                wire signed [EW-1:0] val = (sgn <<< FRAC) + $signed({{(EW-TW){pv[TW-1]}}, pv});
                if (OB < EW - 1) begin : g_trunc
                    assign act[gp*OB +: OB] = val[EW-1] ? {OB{1'b0}} : val[OB-1:0];
                    wire unused_val = &{1'b0, val[EW-2:OB]};
                end else if (OB == EW - 1) begin : g_fit
                    assign act[gp*OB +: OB] = val[EW-1] ? {OB{1'b0}} : val[EW-2:0];
                end else begin : g_ext
                    assign act[gp*OB +: OB] = val[EW-1] ? {OB{1'b0}}
                                            : {{(OB-EW+1){1'b0}}, val[EW-2:0]};
                end
            end
        end
    endgenerate
    // output-buffer write: frame b, fold nf at [half][b][nf]
    reg            dh;
    reg  [BW-1:0]  db;
    reg  [OAW-1:0] obase;               // fold nf of frame 0
    reg  [OAW-1:0] op;
    always @(posedge clk) begin
        if (vd) obuf[op] <= act;
    end
    always @(posedge clk) begin
        if (rst) begin
            dh <= 1'b0; db <= {BW{1'b0}}; obase <= {OAW{1'b0}}; op <= {OAW{1'b0}};
        end else if (vd) begin
            if (db != B_LAST) begin
                db <= db + 1'b1;
                op <= op + O_NF;
            end else begin
                db <= {BW{1'b0}};
                if (!endd) begin
                    obase <= obase + 1'b1;
                    op    <= obase + 1'b1;
                end else begin
                    dh    <= ~dh;
                    obase <= dh ? {OAW{1'b0}} : O_HALF;
                    op    <= dh ? {OAW{1'b0}} : O_HALF;
                end
            end
        end
    end

    // ------------------------------------------------------------ stage E: read out
    // NF words of a frame are shifted into the output register itself, which is the output
    // (one CO*OB-bit slot, no FIFO behind it); the next frame's reads wait until it is taken
    reg            eh;
    reg  [OAW-1:0] ep;
    reg  [NFW-1:0] enf;
    reg  [BW-1:0]  eb;
    reg            ve, elast_q, ovalid;
    reg  [OW-1:0]  oq;
    wire           elast = (enf == NF_LAST);
    wire           eissue = ofull[eh] && !ovalid && !(ve && elast_q);
    wire           drained = eissue && elast && (eb == B_LAST);
    always @(posedge clk) begin
        if (eissue) oq <= obuf[ep];
        if (eissue) elast_q <= elast;
    end
    always @(posedge clk) begin
        if (rst) begin
            eh <= 1'b0; ep <= {OAW{1'b0}}; enf <= {NFW{1'b0}}; eb <= {BW{1'b0}}; ve <= 1'b0;
            ovalid <= 1'b0;
        end else begin
            ve <= eissue;
            if (eissue) begin
                ep  <= (ep == O_LAST) ? {OAW{1'b0}} : ep + 1'b1;
                enf <= elast ? {NFW{1'b0}} : enf + 1'b1;
                if (elast) eb <= (eb == B_LAST) ? {BW{1'b0}} : eb + 1'b1;
                if (drained) eh <= ~eh;
            end
            if (ve && elast_q) ovalid <= 1'b1;
            else if (ovalid && m_ready) ovalid <= 1'b0;
        end
    end

    // the half flags: set by the writer / the last issue / the last activation, cleared by
    // the issue / the read-out (never the same bit in one cycle, see the halves above)
    always @(posedge clk) begin
        if (rst) begin
            ifull <= 2'b00; obusy <= 2'b00; ofull <= 2'b00;
        end else begin
            if (wr_en && wcnt == HB_LAST) ifull[wh] <= 1'b1;
            if (issue && batch_end) begin
                ifull[rh] <= 1'b0;
                obusy[ch] <= 1'b1;
            end
            if (vd && endd && db == B_LAST) ofull[dh] <= 1'b1;
            if (drained) begin
                ofull[eh] <= 1'b0;
                obusy[eh] <= 1'b0;
            end
        end
    end

    // folds shifted in from the top: after NF of them fold 0 is at the bottom
    reg [OUTW-1:0] obeat;
    generate
        if (NF == 1) begin : g_one_fold
            always @(posedge clk) begin
                if (ve) obeat <= oq;
            end
        end else begin : g_folds
            always @(posedge clk) begin
                if (ve) obeat <= {oq, obeat[OUTW-1:OW]};
            end
        end
    endgenerate
    assign m_valid = ovalid;
    assign m_data  = obeat;
endmodule
`default_nettype wire
