"""The board layer: pynq Overlay + AXI DMA + the accelerator IP. Thin, and pynq is imported
only when a PynqBackend is created (pass `pynq=` a stand-in to test it off-board:
cfgen_driver.fakepynq).

Per batch of n frames (buffers allocated once, for max_batch frames):
1. pack into the contiguous input buffer (the send transfer flushes the cache);
2. HLS top with AXI-lite control: wait for ap_idle, write `reps` = n, set ap_start;
   an IP without control registers (the RTL top) just streams;
3. keep both DMA channels busy until every frame is back: the input goes out in MM2S
   transfers of whole frames (as many as fit in the DMA's buffer_max_size, at least one),
   because every MM2S transfer ends with TLAST and the accelerator resynchronises on input
   TLAST: a transfer ending inside a frame would end that frame early (padded and flagged,
   docs/ERRORS.md). A frame larger than buffer_max_size is refused at open. The output comes
   back one receive transfer per frame, because the accelerator sets TLAST on the last beat of
   every frame and a simple-mode S2MM transfer ends at TLAST. Every transfer starts at an
   address aligned to the DMA data width (a DMA without DRE needs aligned addresses): output
   frames sit in aligned slots; input frames are contiguous when a whole number of them is a
   multiple of the width and fits in one transfer, else each sits in an aligned slot and goes
   out on its own;
4. invalidate the output buffer and copy the frames out.
No progress for `timeout` seconds raises AcceleratorTimeout (never a hang); the DMA is then
soft-reset and the backend refuses to run until reset() re-downloads the overlay.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np

from . import checks
from .backends import Backend
from .errors import (AcceleratorTimeout, BoardUnavailable, ClosedError, DMAError, OverlayError)

DMA_TYPE = "xilinx.com:ip:axi_dma:"
# AXI DMA register offsets (PG021) and HLS ap_ctrl_hs bits.
MM2S_DMACR, MM2S_DMASR, S2MM_DMASR = 0x00, 0x04, 0x34
DMACR_RESET = 0x4
AP_START, AP_DONE, AP_IDLE = 0x1, 0x2, 0x4


def import_pynq():
    try:
        import pynq
    except ImportError as e:
        raise BoardUnavailable(
            f"pynq is not importable ({e}): backend='board' runs on a PYNQ board, whose image ships pynq. "
            "Off-board use backend='csim' or 'golden' (`pip install cfgen[board]` installs pynq but pins "
            "numpy<2 and still finds no device).") from None
    return pynq


def _no_device(e: Exception) -> bool:
    return "no devices found" in str(e).lower()


def _board_error(e: Exception, what: str) -> Exception:
    if _no_device(e):
        return BoardUnavailable(f"{what}: no FPGA device found (pynq: {e}). backend='board' runs only on a PYNQ "
                                "board; off-board use backend='csim' or 'golden'.")
    return OverlayError(f"{what}: {type(e).__name__}: {e}")


def find_bitfile(folder) -> Path | None:
    """The one .bit in `folder` that has a .hwh of the same name next to it."""
    folder = Path(folder)
    cands = sorted(p for p in folder.glob("*.bit") if p.with_suffix(".hwh").is_file())
    return cands[0] if len(cands) == 1 else None


def check_overlay_files(bitfile) -> Path:
    if bitfile is None:
        raise OverlayError("no overlay: pass bitfile=<name>.bit (with <name>.hwh next to it); in the build "
                           "folder `make bitstream` then `make package` puts both into package/")
    if not isinstance(bitfile, (str, os.PathLike)):
        raise OverlayError(f"bitfile must be a file name, got {type(bitfile).__name__}")
    bit = Path(bitfile)
    if not bit.is_file():
        raise OverlayError(f"bitstream {bit} not found: run `make bitstream` and `make package` in the build "
                           "folder, then copy package/ onto the board")
    if not bit.with_suffix(".hwh").is_file():
        raise OverlayError(f"{bit.with_suffix('.hwh')} not found: pynq needs the .hwh next to the .bit "
                           "(same name) to find the DMA and the accelerator")
    return bit


def _resolve(overlay, name: str):
    obj = overlay
    for part in name.split("/"):
        obj = getattr(obj, part)
    return obj


def _round_up(x: int, m: int) -> int:
    return -(-x // m) * m


def input_layout(frame_bytes: int, align: int, max_transfer: int) -> tuple[int, int]:
    """(input slot bytes, frames per MM2S transfer) for input frames of `frame_bytes`.

    Every MM2S transfer carries a whole number of frames (its TLAST ends the last one) and
    starts at an `align`-byte address. Frames are packed contiguously (slot = frame_bytes) and
    sent k at a time, k the largest count within `max_transfer` whose bytes are a multiple of
    `align`; if there is none, each frame sits in an aligned slot and is sent on its own.
    A frame larger than `max_transfer` cannot be sent without splitting it: DMAError."""
    if frame_bytes > max_transfer:
        raise DMAError(f"an input frame of {frame_bytes} bytes exceeds the DMA's maximum transfer of "
                       f"{max_transfer} bytes (buffer_max_size): every MM2S transfer ends with TLAST, which "
                       "would end the frame early; rebuild the overlay with a wider DMA length register "
                       "(c_sg_length_width, up to 26 bits)")
    step = align // math.gcd(frame_bytes, align)   # frames whose bytes are a multiple of align
    k = (max_transfer // frame_bytes) // step * step
    if k >= 1:
        return frame_bytes, k
    return _round_up(frame_bytes, align), 1


class PynqBackend(Backend):
    name = "board"

    def __init__(self, meta: dict, bitfile, max_batch: int = 64, *, timeout: float = 5.0, pynq=None,
                 dma_name: str | None = None, ip_name: str | None = None):
        super().__init__(meta, max_batch)
        self.timeout = checks.seconds(timeout, "timeout")
        checks.optional_str(dma_name, "dma_name")
        checks.optional_str(ip_name, "ip_name")
        self.bitfile = check_overlay_files(bitfile)
        self._pynq = pynq if pynq is not None else import_pynq()
        self._dma_name, self._ip_name = dma_name, ip_name
        self._in_buf = self._out_buf = None
        self._broken = None
        self.overlay = self.dma = self.ip = self.wdma = None
        try:
            self._load_overlay()
            self._allocate()
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ set-up
    def _load_overlay(self) -> None:
        try:
            self.overlay = self._pynq.Overlay(str(self.bitfile))
        except Exception as e:
            raise _board_error(e, f"loading the overlay {self.bitfile.name}") from None
        ip_dict = getattr(self.overlay, "ip_dict", {}) or {}
        wmeta = self.meta.get("weights")
        wdma = wmeta["dma"] if wmeta else None
        # the weight port's DMA (run-time weights builds) is found by its name in bd.tcl
        dmas = [k for k, v in ip_dict.items() if str(v.get("type", "")).startswith(DMA_TYPE)
                and k.split("/")[-1] != wdma]
        name = self._dma_name
        if name is None:
            if not dmas:
                raise OverlayError(f"{self.bitfile.name}: no AXI DMA in the overlay (IPs: {', '.join(ip_dict) or 'none'})")
            if len(dmas) > 1:
                raise OverlayError(f"{self.bitfile.name}: several AXI DMAs ({', '.join(dmas)}): pass dma_name=")
            name = dmas[0]
        elif name not in ip_dict:
            raise OverlayError(f"{self.bitfile.name}: no IP named {name!r} (IPs: {', '.join(ip_dict)})")
        self.dma_name = name
        self.dma = _resolve(self.overlay, name)
        for ch in ("sendchannel", "recvchannel"):
            if getattr(self.dma, ch, None) is None:
                raise OverlayError(f"{self.bitfile.name}: DMA {name} has no {ch} (needs MM2S and S2MM)")
        params = ip_dict[name].get("parameters", {}) or {}
        try:
            widths = [int(params[k]) for k in ("c_m_axi_mm2s_data_width", "c_m_axi_s2mm_data_width") if k in params]
        except (TypeError, ValueError):
            raise OverlayError(f"{self.bitfile.name}: DMA {name} has a non-numeric data width in the .hwh") from None
        self.align = max(widths + [int(self.meta["dma"]["data_width_bits"])]) // 8
        self.max_transfer = int(getattr(self.dma, "buffer_max_size", (1 << 14) - 1))

        top = self.meta["ip"]["top"]
        if self._ip_name is not None:
            if self._ip_name not in ip_dict:
                raise OverlayError(f"{self.bitfile.name}: no IP named {self._ip_name!r}")
            ips = [self._ip_name]
        else:
            ips = [k for k, v in ip_dict.items()
                   if f":{top}:" in str(v.get("type", "")) or k.split("/")[-1].startswith(top)]
        if len(ips) > 1:
            raise OverlayError(f"{self.bitfile.name}: several accelerator IPs ({', '.join(ips)}): pass ip_name=")
        self.ip_name = ips[0] if ips else None
        self.ip = _resolve(self.overlay, self.ip_name) if self.ip_name else None
        regs = ip_dict[self.ip_name].get("registers", {}) if self.ip_name else {}
        reps = self.meta["ip"]["reps_register"]
        self.ctrl_offset = regs["CTRL"]["address_offset"] if "CTRL" in regs else (0 if regs else None)
        self.reps_offset = regs[reps]["address_offset"] if reps in regs else None
        if self.ip is not None and self.reps_offset is None and regs:
            raise OverlayError(f"{self.bitfile.name}: accelerator {self.ip_name} has no {reps!r} register")
        if self.ip is None:
            self.ctrl_offset = None  # free-running stream (RTL top): no control registers
        self.wdma = self.mode_offset = None
        if wmeta:
            names = [k for k in ip_dict if k.split("/")[-1] == wdma]
            if not names:
                raise OverlayError(f"{self.bitfile.name}: no weight DMA {wdma!r} (this build loads its "
                                   f"weights at run time; IPs: {', '.join(ip_dict)})")
            self.wdma = _resolve(self.overlay, names[0])
            if self.ip is not None:
                mreg = wmeta["mode_register"]
                if mreg not in regs:
                    raise OverlayError(f"{self.bitfile.name}: accelerator {self.ip_name} has no {mreg!r} "
                                       "register (needed to load run-time weights)")
                self.mode_offset = regs[mreg]["address_offset"]
        self._broken = None

    def _allocate(self) -> None:
        mi, mo = self.meta["input"], self.meta["output"]
        self.out_slot = _round_up(mo["frame_bytes"], self.align)
        if self.out_slot > self.max_transfer or self.align > self.max_transfer:
            raise OverlayError(f"an output frame of {mo['frame_bytes']} bytes exceeds the DMA's maximum "
                               f"transfer of {self.max_transfer} bytes")
        self.in_slot, self.frames_per_send = input_layout(mi["frame_bytes"], self.align, self.max_transfer)
        checks.buffer_bytes(self.max_batch, self.in_slot, "input (DMA-aligned)")
        checks.buffer_bytes(self.max_batch, self.out_slot, "output (DMA-aligned)")
        try:
            self._in_buf = self._pynq.allocate(shape=(self.max_batch * self.in_slot,), dtype=np.uint8)
            self._out_buf = self._pynq.allocate(shape=(self.max_batch * self.out_slot,), dtype=np.uint8)
        except Exception as e:
            raise _board_error(e, f"allocating {self.max_batch}-frame DMA buffers") from None

    # ------------------------------------------------------------------ running
    def _status(self, ch) -> str:
        bits = []
        for attr in ("running", "idle", "error"):
            try:
                bits.append(f"{attr}={bool(getattr(ch, attr))}")
            except Exception:  # pragma: no cover - status unreadable
                pass
        return ", ".join(bits)

    def _check_error(self, ch, which: str) -> None:
        if getattr(ch, "error", False):
            self._broken = f"the DMA {which} channel reported an error"
            raise DMAError(f"DMA {which} channel error ({self._status(ch)}): a transfer length that the "
                           "accelerator's stream does not match (wrong bitstream for cfgen_meta.json?) or a "
                           "bad address; call reset() before running again")

    def _timeout(self, what: str) -> None:
        self._broken = f"timed out {what}"
        try:  # soft reset of both DMA channels, bounded
            self.dma.write(MM2S_DMACR, DMACR_RESET)
            t = time.perf_counter() + 0.1
            while self.dma.read(MM2S_DMACR) & DMACR_RESET and time.perf_counter() < t:
                pass
        except Exception:
            pass
        raise AcceleratorTimeout(f"no progress for {self.timeout:g} s {what} (send: "
                                 f"{self._status(self.dma.sendchannel)}; recv: {self._status(self.dma.recvchannel)}). "
                                 "The accelerator or the DMA stalled: is the overlay the one built with this "
                                 "cfgen_meta.json? Call reset() to re-download the overlay.")

    def _wait_ip_idle(self, what: str) -> None:
        deadline = time.perf_counter() + self.timeout
        while not self.ip.read(self.ctrl_offset) & AP_IDLE:
            if time.perf_counter() > deadline:
                self._timeout(f"waiting for the accelerator to become idle {what}")

    def _execute(self, frames):
        if self._broken:
            raise ClosedError(f"the board backend {self._broken}: call reset() (re-downloads the overlay)")
        n = frames.shape[0]
        mi, mo = self.meta["input"], self.meta["output"]
        fb, k = mi["frame_bytes"], self.frames_per_send
        total_in = n * fb
        t0 = time.perf_counter()
        if self.in_slot == fb:
            self._in_buf[:total_in] = frames.reshape(-1)
        else:  # one frame per aligned slot
            self._in_buf[:n * self.in_slot].reshape(n, self.in_slot)[:, :fb] = frames
        t1 = time.perf_counter()

        send, recv = self.dma.sendchannel, self.dma.recvchannel
        if self.ctrl_offset is not None:
            self._wait_ip_idle("before the batch")
            self.ip.write(self.reps_offset, n)
            self.ip.write(self.ctrl_offset, AP_START)
        sent = issued = done = 0   # sent: frames handed to MM2S
        send_busy = recv_busy = False
        deadline = time.perf_counter() + self.timeout
        while done < n or send_busy:
            progress = False
            if send_busy and send.idle:
                send_busy, progress = False, True
            if recv_busy and recv.idle:
                recv_busy, progress, done = False, True, done + 1
            self._check_error(send, "send (MM2S)")
            self._check_error(recv, "receive (S2MM)")
            if not send_busy and sent < n:
                m = min(k, n - sent)   # whole frames: the transfer's TLAST ends the last one
                send.transfer(self._in_buf, start=sent * self.in_slot, nbytes=m * fb)
                sent += m
                send_busy = progress = True
            if not recv_busy and issued < n:
                recv.transfer(self._out_buf, start=issued * self.out_slot, nbytes=mo["frame_bytes"])
                issued += 1
                recv_busy = progress = True
            now = time.perf_counter()
            if progress:
                deadline = now + self.timeout
            elif now > deadline:
                self._timeout(f"after {done}/{n} frames came back and {sent * fb}/{total_in} input bytes were sent")
        if self.ctrl_offset is not None:
            self._wait_ip_idle("after the batch")
        t2 = time.perf_counter()
        self._out_buf.invalidate()
        out = np.asarray(self._out_buf[:n * self.out_slot]).reshape(n, self.out_slot)[:, :mo["frame_bytes"]].copy()
        self.timing = {"copy_in": t1 - t0, "compute": t2 - t1, "copy_out": time.perf_counter() - t2}
        return out

    def _load_weights(self, wf):
        """Stream the words through the weight DMA with the IP's mode register at 1 (an RTL
        top loads whenever words arrive) and take the two status words back."""
        if self._broken:
            raise ClosedError(f"the board backend {self._broken}: call reset() (re-downloads the overlay)")
        if self.wdma is None:
            raise OverlayError(f"{self.bitfile.name}: no weight port (the build keeps its weights in "
                               "the bitstream)")
        n = len(wf.words)
        chunk = max(self.align, (self.max_transfer // self.align) * self.align) // 4 * 4
        try:
            wbuf = self._pynq.allocate(shape=(max(n, 1),), dtype=np.uint32)
            sbuf = self._pynq.allocate(shape=(max(2, self.align // 4),), dtype=np.uint32)
        except Exception as e:
            raise _board_error(e, f"allocating a {4 * n:,}-byte weight buffer") from None
        try:
            wbuf[:n] = wf.words
            send, recv = self.wdma.sendchannel, self.wdma.recvchannel
            if self.ctrl_offset is not None:
                self._wait_ip_idle("before loading the weights")
                self.ip.write(self.mode_offset, 1)
                self.ip.write(self.ctrl_offset, AP_START)
            recv.transfer(sbuf, start=0, nbytes=8)
            sent, send_busy, got = 0, False, False
            deadline = time.perf_counter() + self.timeout
            while not got or send_busy or sent < 4 * n:
                progress = False
                if send_busy and send.idle:
                    send_busy, progress = False, True
                if not got and recv.idle:
                    got = progress = True
                self._check_error(send, "weight send (MM2S)")
                self._check_error(recv, "weight status (S2MM)")
                if not send_busy and sent < 4 * n:
                    m = min(chunk, 4 * n - sent)
                    send.transfer(wbuf, start=sent, nbytes=m)
                    sent += m
                    send_busy = progress = True
                now = time.perf_counter()
                if progress:
                    deadline = now + self.timeout
                elif now > deadline:
                    self._timeout(f"loading the weights ({sent:,}/{4 * n:,} bytes sent, status "
                                  f"{'received' if got else 'not received'})")
            if self.ctrl_offset is not None:
                self._wait_ip_idle("after loading the weights")
                self.ip.write(self.mode_offset, 0)
            sbuf.invalidate()
            return int(sbuf[0]), int(sbuf[1])
        finally:
            for buf in (wbuf, sbuf):
                try:
                    (getattr(buf, "freebuffer", None) or buf.close)()
                except Exception:
                    pass

    def reset(self) -> None:
        """Re-download the overlay (after a timeout or DMA error); buffers are kept."""
        if self._closed:
            raise ClosedError("the board backend is closed")
        self._load_overlay()

    def close(self) -> None:
        for attr in ("_in_buf", "_out_buf"):
            buf = getattr(self, attr, None)
            if buf is not None:
                setattr(self, attr, None)
                try:
                    (getattr(buf, "freebuffer", None) or buf.close)()
                except Exception:
                    pass
        self.overlay = self.dma = self.ip = self.wdma = None
        super().close()

    def describe(self) -> str:
        return f"board ({self.bitfile.name}, DMA {getattr(self, 'dma_name', '?')}, IP {self.ip_name or 'free-running'})"
