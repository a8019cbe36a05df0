// cf_axis_in: AXI4-Stream slave -> internal stream.
// TDATA is the beat padded to whole bytes (TW = ceil(W/8)*8); the pad bits
// are ignored. TLAST is not needed: frames are counted from the fixed frame
// size (every unit counts its own beats); it is accepted and ignored.
// The handshake is passed straight through; the generated top puts a FIFO
// right behind this adapter, so s_axis_tready comes from a register.
`default_nettype none
module cf_axis_in #(
    parameter W  = 24,
    parameter TW = ((W + 7) / 8) * 8
) (
    input  wire [TW-1:0] s_axis_tdata,
    input  wire          s_axis_tvalid,
    output wire          s_axis_tready,
    input  wire          s_axis_tlast,
    output wire          m_valid,
    input  wire          m_ready,
    output wire [W-1:0]  m_data
);
    assign m_data        = s_axis_tdata[W-1:0];
    assign m_valid       = s_axis_tvalid;
    assign s_axis_tready = m_ready;
    generate
        if (TW > W) begin : g_pad
            wire unused_pad = &{1'b0, s_axis_tdata[TW-1:W], s_axis_tlast};
        end else begin : g_nopad
            wire unused_last = &{1'b0, s_axis_tlast};
        end
    endgenerate
endmodule
`default_nettype wire
