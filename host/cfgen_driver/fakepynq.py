"""A stand-in for the `pynq` module, to exercise the board layer (board.PynqBackend) off-board.

    fake = FakePynq(meta, answer=csim_backend.execute)      # or golden
    backend = PynqBackend(meta, "x.bit", pynq=fake)

It behaves like the parts of pynq the driver uses, and checks what real hardware would punish:
- Overlay(bitfile): needs the .bit and .hwh; ip_dict with an AXI DMA (parameters as in the .hwh)
  and, unless control=False, an HLS IP with CTRL and reps registers;
- allocate(shape, dtype): buffers with a physical address and a separate "device" copy:
  flush() copies to the device, invalidate() back; DMA reads and writes only the device copy,
  so a driver that forgets to invalidate reads stale bytes;
- DMA channels as pynq's _SDMAChannel: transfer(array, start, nbytes) only when idle (else
  RuntimeError), nbytes <= buffer_max_size (else ValueError), start address aligned to the
  memory-map width (else RuntimeError), buffers from this allocate() and not freed; idle,
  running, error read the simulated status; write/read of the DMA's registers (soft reset);
- the accelerator: consumes input bytes only while it has room (`capacity` frames of output
  not yet received: backpressure, so a driver that waits for the whole send before receiving
  deadlocks and times out), computes frames with `answer` (packed frames in, packed frames out),
  resynchronises on input TLAST as rtl/cf_axis_in.v and hls/cf_axis.h do: every MM2S transfer
  ends with TLAST, so a transfer that ends inside a frame ends that frame early: its rest is
  padded with zero bytes, it is computed so, and counted in `short_frames` (its output would
  carry TUSER = 1, which the DMA drops); a transfer may carry several whole frames.
  It emits one S2MM packet per frame (TLAST per frame); an S2MM transfer shorter than the packet
  sets the DMA internal-error bit (packet_pad > 0 makes packets longer than the metadata says:
  a bitstream that does not match cfgen_meta.json). With control, frames are processed only after ap_start, at
  most `reps` of them. hang=True: the accelerator never produces output. no_device=True: Overlay
and allocate raise pynq's "No Devices Found"; dma=False: no DMA in the overlay;
fail_alloc_after=k: allocate fails once k buffers are live.
Run-time weights (meta "weights"): a second DMA named as the metadata says (wdma, the cell name in bd.tcl) and a
`mode` register; with mode 1, ap_start makes the accelerator read exactly the metadata's
number of 32-bit words from that DMA's MM2S channel and answer on its S2MM channel with the
Fletcher sums of what it received (weightfile.fletcher), then hand the words to
`on_weights(words)` (e.g. a C-simulation backend's load, so that the frames computed after
it use them). corrupt_weight=k flips bit 0 of the k-th word on the way in.
Every call is appended to `calls` as a tuple (name, ...).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DEVICE_ERROR = "No Devices Found"


class FakeBuffer(np.ndarray):
    """Host view of a contiguous buffer; `device` is what the DMA sees."""

    def __array_finalize__(self, obj):
        # Views (slices) share the host memory but are not DMA buffers of their own.
        self.fake = getattr(obj, "fake", None)
        self.dev_mem = None
        self.physical_address = getattr(obj, "physical_address", None)
        self.freed = getattr(obj, "freed", False)

    def flush(self):
        self.fake.calls.append(("flush", self.physical_address))
        self.dev_mem[:] = np.asarray(self).reshape(-1).view(np.uint8)

    def invalidate(self):
        self.fake.calls.append(("invalidate", self.physical_address))
        np.asarray(self).reshape(-1).view(np.uint8)[:] = self.dev_mem

    def freebuffer(self):
        self.fake.calls.append(("freebuffer", self.physical_address))
        if self.freed:
            raise RuntimeError("buffer freed twice")
        self.freed = True
        self.fake.live_buffers.discard(self.physical_address)

    close = freebuffer


class FakeChannel:
    def __init__(self, fake, rx: bool):
        self.fake, self.rx = fake, rx
        self.tag = "recv" if rx else "send"
        self._active = None         # [buffer, address offset, nbytes, bytes done]
        self._first = True
        self.status_error = 0
        self.transferred = 0

    # pynq properties: reading them advances the simulation
    @property
    def running(self):
        return True

    @property
    def idle(self):
        self.fake.step()
        return self._active is None and not self._first

    @property
    def error(self):
        self.fake.step()
        return self.status_error != 0

    def transfer(self, array, start=0, nbytes=0):
        self.fake.calls.append((f"{self.tag}.transfer", int(start), int(nbytes)))
        if not isinstance(array, FakeBuffer) or array.dev_mem is None:
            raise TypeError("DMA transfers need a buffer from allocate()")
        if array.freed:
            raise RuntimeError("transfer from a freed buffer")
        if self._active is not None:
            raise RuntimeError("DMA channel not idle")
        if nbytes == 0:
            nbytes = array.nbytes - start
        if nbytes > self.fake.buffer_max_size:
            raise ValueError(f"Transfer size is {nbytes} bytes, which exceeds the maximum DMA buffer size "
                             f"{self.fake.buffer_max_size}.")
        if start < 0 or start + nbytes > array.nbytes or nbytes <= 0:
            raise ValueError(f"transfer [{start}, {start + nbytes}) outside the {array.nbytes}-byte buffer")
        if (array.physical_address + start) % self.fake.align:
            raise RuntimeError(f"DMA does not support unaligned transfers; Starting address must be aligned "
                               f"to {self.fake.align} bytes.")
        if not self.rx:
            array.flush()  # as pynq does before a send
        self._first = False
        self._active = [array, start, nbytes, 0]

    def wait(self):
        raise AssertionError("the driver must poll idle with a timeout, not call pynq's blocking wait()")

    def stop(self):
        raise AssertionError("pynq's stop() spins forever on a stalled channel; the driver must not call it")

    def start(self):
        self.fake.calls.append((f"{self.tag}.start",))


def _deliver(recv, packets: list) -> None:
    """S2MM: the next packet (TLAST at its end) into the receive transfer waiting, if any;
    a packet longer than the transfer sets the DMA internal-error bit."""
    if recv._active is None or not packets:
        return
    buf, start, nbytes, _ = recv._active
    pkt = packets.pop(0)
    recv._active = None
    if len(pkt) > nbytes:
        recv.status_error = 0x10
        return
    buf.dev_mem[start:start + len(pkt)] = np.frombuffer(pkt, dtype=np.uint8)
    recv.transferred = len(pkt)


class FakeDMA:
    def __init__(self, fake):
        self.fake = fake
        self.sendchannel = FakeChannel(fake, rx=False)
        self.recvchannel = FakeChannel(fake, rx=True)
        self.buffer_max_size = fake.buffer_max_size
        self.regs = {}

    def write(self, offset, value):
        self.fake.calls.append(("dma.write", offset, value))
        if offset == 0 and value & 0x4:  # soft reset: both channels halt, state cleared
            self.fake.reset_hardware()
            return
        self.regs[offset] = value

    def read(self, offset):
        return self.regs.get(offset, 0)


MODE_OFFSET = 0x18


class FakeIP:
    def __init__(self, fake):
        self.fake = fake
        self.regs = {0x00: 0x4, 0x10: 0, MODE_OFFSET: 0}

    def write(self, offset, value):
        self.fake.calls.append(("ip.write", offset, int(value)))
        if offset == 0x00:
            if value & 0x1:
                if not self.regs[0] & 0x4:
                    raise RuntimeError("ap_start while the accelerator is busy")
                if self.regs[MODE_OFFSET] == 1:
                    self.fake.start_load()
                else:
                    self.fake.start(self.regs[0x10])
            return
        self.regs[offset] = int(value)

    def read(self, offset):
        self.fake.step()
        if offset == 0x00:
            v = self.regs[0]
            self.regs[0] &= ~0x2  # ap_done clears on read
            return v
        return self.regs.get(offset, 0)


class FakeOverlay:
    def __init__(self, fake, bitfile, download=True):
        fake.calls.append(("Overlay", str(bitfile)))
        if fake.no_device:
            raise RuntimeError(DEVICE_ERROR)
        bit = Path(bitfile)
        if not bit.is_file() or not bit.with_suffix(".hwh").is_file():
            raise IOError(f"{bitfile} does not exist")
        fake.reset_hardware()
        fake.overlays += 1
        w = str(fake.align * 8)
        self.ip_dict = {} if not fake.has_dma else {"axi_dma_0": {"type": "xilinx.com:ip:axi_dma:7.1", "parameters": {
            "c_include_sg": "0", "c_sg_length_width": str(fake.buffer_max_size.bit_length()),
            "c_m_axi_mm2s_data_width": w, "c_m_axi_s2mm_data_width": w,
            "c_include_mm2s": "1", "c_include_s2mm": "1"}, "registers": {}}}
        self.axi_dma_0 = fake.dma
        wm = fake.meta.get("weights")
        if wm and fake.has_dma:
            self.ip_dict[wm["dma"]] = {"type": "xilinx.com:ip:axi_dma:7.1", "parameters": {
                "c_include_sg": "0", "c_m_axi_mm2s_data_width": w, "c_m_axi_s2mm_data_width": w,
                "c_include_mm2s": "1", "c_include_s2mm": "1"}, "registers": {}}
            setattr(self, wm["dma"], fake.wdma)
        if fake.control:
            top = fake.meta["ip"]["top"]
            regs = {"CTRL": {"address_offset": 0x00, "size": 32},
                    fake.meta["ip"]["reps_register"]: {"address_offset": 0x10, "size": 32}}
            if wm:
                regs[wm["mode_register"]] = {"address_offset": MODE_OFFSET, "size": 32}
            self.ip_dict[f"{top}_0"] = {"type": f"xilinx.com:hls:{top}:1.0", "parameters": {}, "registers": regs}
            setattr(self, f"{top}_0", fake.ip)


class FakePynq:
    """Module-like object: FakePynq(...).Overlay, .allocate; .calls records every call."""

    def __init__(self, meta: dict, answer, *, control: bool = True, buffer_max_size: int = (1 << 14) - 1,
                 align: int = 8, capacity: int = 2, hang: bool = False, no_device: bool = False,
                 dma: bool = True, packet_pad: int = 0, fail_alloc_after: int | None = None,
                 on_weights=None, corrupt_weight: int | None = None):
        self.meta, self.answer = meta, answer
        self.on_weights, self.corrupt_weight = on_weights, corrupt_weight
        self.weight_loads = 0       # completed loads
        self.has_dma, self.packet_pad, self.fail_alloc_after = dma, packet_pad, fail_alloc_after
        self.control, self.buffer_max_size, self.align = control, buffer_max_size, align
        self.capacity, self.hang, self.no_device = capacity, hang, no_device
        self.calls: list[tuple] = []
        self.live_buffers: set[int] = set()
        self.overlays = 0
        self.frames_computed = 0
        self.short_frames = 0       # frames ended early by an MM2S transfer's TLAST (padded)
        self._next_addr = 0x1000_0000
        self.dma = FakeDMA(self)
        self.wdma = FakeDMA(self)
        self.ip = FakeIP(self)
        self.reset_hardware()

    # --- pynq API
    def Overlay(self, bitfile, download=True):  # noqa: N802 - pynq's name
        return FakeOverlay(self, bitfile, download)

    def allocate(self, shape, dtype=np.uint32, **kw):
        self.calls.append(("allocate", tuple(int(s) for s in np.atleast_1d(shape)), np.dtype(dtype).name))
        if self.no_device:
            raise RuntimeError(DEVICE_ERROR)
        if self.fail_alloc_after is not None and len(self.live_buffers) >= self.fail_alloc_after:
            raise RuntimeError("Failed to allocate memory!")
        buf = np.zeros(shape, dtype=dtype).view(FakeBuffer)
        buf.fake = self
        buf.dev_mem = np.zeros(buf.nbytes, dtype=np.uint8)
        buf.physical_address = self._next_addr
        buf.freed = False
        self._next_addr += -(-buf.nbytes // 4096) * 4096 + 4096
        self.live_buffers.add(buf.physical_address)
        return buf

    # --- simulated hardware
    def reset_hardware(self):
        self.in_fifo = bytearray()
        self.out_packets: list[bytes] = []
        self.reps_left = 0 if self.control else 1 << 62
        self.loading = None         # bytearray of the weight words received, while loading
        self.status_packets: list[bytes] = []
        if hasattr(self, "ip"):
            self.ip.regs[0] = 0x4
        for ch in (self.dma.sendchannel, self.dma.recvchannel, self.wdma.sendchannel, self.wdma.recvchannel):
            ch._active, ch.status_error = None, 0

    def start_load(self):
        self.loading = bytearray()
        self.ip.regs[0] = 0x1

    def _step_weights(self):
        send, recv = self.wdma.sendchannel, self.wdma.recvchannel
        want = 4 * int(self.meta["weights"]["words"])
        if self.loading is None and not self.control and send._active is not None:
            self.loading = bytearray()  # an RTL top loads whenever words arrive
        if self.loading is not None and send._active is not None:
            buf, start, nbytes, done = send._active
            k = min(nbytes - done, want - len(self.loading))
            self.loading += buf.dev_mem[start + done:start + done + k].tobytes()
            send._active[3] += k
            if send._active[3] == nbytes:
                send._active = None
        if self.loading is not None and len(self.loading) == want:
            from .weightfile import fletcher
            words = np.frombuffer(bytes(self.loading), dtype="<u4").astype(np.uint32)
            if self.corrupt_weight is not None and self.corrupt_weight < len(words):
                words[self.corrupt_weight] ^= 1
            s1, s2 = fletcher(words)
            self.status_packets.append(np.array([s1, s2], dtype="<u4").tobytes())
            if self.on_weights is not None:
                self.on_weights(words)
            self.loading = None
            self.weight_loads += 1
            if self.control:
                self.ip.regs[0] = 0x6
        _deliver(recv, self.status_packets)

    def start(self, reps: int):
        self.reps_left = int(reps)
        self.ip.regs[0] = 0x1 if reps else 0x6

    def step(self):
        if self.meta.get("weights"):
            self._step_weights()
        mi, mo = self.meta["input"], self.meta["output"]
        fb = mi["frame_bytes"]
        send, recv = self.dma.sendchannel, self.dma.recvchannel
        # MM2S: move bytes into the accelerator while it has room (input FIFO of one frame
        # plus the frames it may hold in flight).
        if send._active is not None:
            buf, start, nbytes, done = send._active
            room = fb * (self.capacity + 1) - len(self.in_fifo)
            k = min(room, nbytes - done)
            if k > 0:
                self.in_fifo += buf.dev_mem[start + done:start + done + k].tobytes()
                send._active[3] += k
            if send._active[3] == nbytes:
                send._active = None
                # TLAST on the transfer's last beat: a frame it cuts short is padded with zeros.
                # (the accelerator consumes whole frames, so len % fb is the current frame's fill)
                part = len(self.in_fifo) % fb
                if part:
                    self.in_fifo += bytes(fb - part)
                    self.short_frames += 1
        # the accelerator (a run-time weights build computes nothing before its first load)
        if not self.hang and not (self.meta.get("weights") and not self.weight_loads):
            can = min(len(self.in_fifo) // fb, self.capacity - len(self.out_packets), self.reps_left)
            if can > 0:
                frames = np.frombuffer(bytes(self.in_fifo[:can * fb]), dtype=np.uint8).reshape(can, fb)
                del self.in_fifo[:can * fb]
                out = np.asarray(self.answer(frames), dtype=np.uint8).reshape(can, mo["frame_bytes"])
                self.out_packets += [row.tobytes() + bytes(self.packet_pad) for row in out]
                self.frames_computed += can
                self.reps_left -= can
                if self.control and self.reps_left == 0:
                    self.ip.regs[0] = 0x6  # ap_done | ap_idle
        # S2MM: one packet (frame, TLAST at its end) per transfer
        _deliver(recv, self.out_packets)
