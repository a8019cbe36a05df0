// cf_check: simulation-only stream checker (not synthesized).
// Compares every beat that moves on a stream (valid && ready) with the
// expected beats read from FILE (one hex beat per line, N lines; the index
// wraps at N, so frames can repeat). Counts beats and mismatches and keeps
// the index, data and expectation of the first mismatch. Reset restarts
// at the first expected beat.
`default_nettype none
module cf_check #(
    parameter W     = 8,
    parameter N     = 1,
    parameter FILE  = "",
    parameter NAME  = "stream",
    parameter VERBOSE = 1
) (
    input wire         clk,
    input wire         rst,
    input wire         valid,
    input wire         ready,
    input wire [W-1:0] data
);
    // elaboration-time parameter checks (an unknown module stops every tool)
    generate
        if (!(W >= 1 && N >= 1)) begin : g_bad_size
            cf_check_needs_W_and_N_at_least_1 u_bad ();
        end
    endgenerate

    reg [W-1:0] exp_mem [0:N-1];
    initial begin
        if (FILE != "") $readmemh(FILE, exp_mem);
    end

    reg [31:0]  idx;        // index into exp_mem
    reg [31:0]  beats;      // beats seen since reset
    reg [31:0]  mismatches;
    // Read by the cocotb test through VPI, not by any logic here.
    /* verilator lint_off UNUSEDSIGNAL */
    reg [31:0]  first_bad;  // beat number of the first mismatch (or all ones)
    reg [W-1:0] first_got, first_exp;
    /* verilator lint_on UNUSEDSIGNAL */

    wire [W-1:0] expv = exp_mem[idx];
    always @(posedge clk) begin
        if (rst) begin
            idx <= 32'd0; beats <= 32'd0; mismatches <= 32'd0;
            first_bad <= 32'hffffffff;
            first_got <= {W{1'b0}}; first_exp <= {W{1'b0}};
        end else if (valid && ready) begin
            idx   <= (idx == N - 1) ? 32'd0 : idx + 32'd1;
            beats <= beats + 32'd1;
            if (data !== expv) begin
                mismatches <= mismatches + 32'd1;
                if (mismatches == 32'd0) begin
                    first_bad <= beats;
                    first_got <= data;
                    first_exp <= expv;
                end
                if (VERBOSE != 0 && mismatches < 32'd3)
                    $display("cf_check %0s: beat %0d mismatch: got %h expected %h",
                             NAME, beats, data, expv);
            end
        end
    end
endmodule
`default_nettype wire
