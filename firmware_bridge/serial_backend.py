"""Serial backend: a turnstile controller board on a UART/USB serial port, via pyserial.

The protocol state lives in :class:`firmware_bridge.link.HostLink` (sans I/O); this module is
the pump: a reader thread hands received bytes to the event loop (through the one crossing
point, ``call_soon_threadsafe``), a ticker task lets protocol time pass, and writes go straight
to the port from the loop. If the port disappears (USB unplugged) the reader keeps trying to
reopen it; meanwhile the controller is silent, which the link reports as a fault.

Config keys: ``port`` (required; a device path or any pyserial URL), ``baudrate`` (115200),
``ack_timeout_s``, ``max_retries``, ``heartbeat_s``, ``silence_s`` (see
:class:`~firmware_bridge.link.LinkTimings`), ``connect_timeout_s`` (how long ``async with``
waits for the first handshake before carrying on in fault), ``hold_s`` (0: the controller
holds an unlock until the passage or a lock).
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import serial

from firmware_bridge import frames
from firmware_bridge.base import Indicator, TurnstileBase
from firmware_bridge.config import SerialTurnstileConfig, TurnstileConfigError, turnstile_settings
from firmware_bridge.link import Completed, Connected, Failed, HostLink, LinkTimings, Lost, Received
from tickets.model import Direction

log = logging.getLogger(__name__)

_DIR_WIRE = {Direction.IN: frames.DIR_IN, Direction.OUT: frames.DIR_OUT}
_WIRE_DIR = {v: k for k, v in _DIR_WIRE.items()}
_IND_WIRE = {Indicator.IDLE: frames.IND_IDLE, Indicator.GREEN: frames.IND_GREEN,
             Indicator.RED: frames.IND_RED, Indicator.FAULT: frames.IND_FAULT,
             Indicator.EMERGENCY: frames.IND_EMERGENCY}


class SerialTurnstile(TurnstileBase):
    """Turnstile behind a controller board that speaks the ``frames`` protocol."""

    def __init__(self, config: SerialTurnstileConfig | Mapping[str, Any], *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(clock=clock)
        settings = turnstile_settings(config)
        if not isinstance(settings, SerialTurnstileConfig):
            raise TurnstileConfigError([("backend", f"SerialTurnstile needs backend serial, not {settings.backend}")])
        self.settings = settings
        self.port = settings.port
        self.baudrate = settings.baudrate
        self.timings = LinkTimings(
            ack_timeout_s=settings.ack_timeout_s, max_retries=settings.max_retries,
            heartbeat_s=settings.heartbeat_s, silence_s=settings.silence_s,
        )
        self.connect_timeout_s = settings.connect_timeout_s
        self.hold_s = settings.hold_s
        # The link clock is always monotonic: protocol timers must not follow an injected
        # test clock that stands still.
        self._link_clock = time.monotonic
        self.link = HostLink(self.timings, self._link_clock())
        self._serial: serial.SerialBase | None = None
        self._reader: threading.Thread | None = None
        self._stop = threading.Event()
        self._ticker: asyncio.Task[None] | None = None
        self._waiting: dict[int, asyncio.Future[int | None]] = {}
        self._connected = asyncio.Event()
        self._indicator: tuple[Indicator, str] = (Indicator.IDLE, "")
        self.write_errors = 0
        #: state queries the controller did not answer in time (the status page shows them)
        self.query_timeouts = 0
        self._open_failing = False
        self.controller_state: dict[str, Any] = {}
        self._state_waiters: list[asyncio.Future[dict[str, Any]]] = []

    # -- lifecycle ------------------------------------------------------------------------
    async def _hw_start(self) -> None:
        self._stop.clear()
        self._serial = self._open_port()
        self._reader = threading.Thread(target=self._read_loop, name=f"turnstile-serial {self.port}",
                                        daemon=True)
        self._reader.start()
        self._ticker = asyncio.create_task(self._tick_loop())
        self._pump()
        try:
            await asyncio.wait_for(self._connected.wait(), self.connect_timeout_s)
        except TimeoutError:
            log.error("turnstile controller on %s did not answer the handshake", self.port)
            self._on_fault("controller_not_answering")

    async def _hw_stop(self) -> None:
        if self._connected.is_set() and not self._emergency:
            await self._command(frames.LOCK, b"")
        self._stop.set()
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
        if self._reader is not None:
            await asyncio.to_thread(self._reader.join, 2.0)
        ser, self._serial = self._serial, None
        if ser is not None:
            ser.close()
        for fut in self._waiting.values():
            if not fut.done():
                fut.set_result(None)

    def _open_port(self) -> serial.SerialBase | None:
        try:
            ser = serial.serial_for_url(self.port, baudrate=self.baudrate, timeout=0.02,
                                        write_timeout=0.2, exclusive=True)
        except (serial.SerialException, OSError, ValueError) as exc:
            # Say it once; while the board stays unplugged we retry quietly.
            (log.debug if self._open_failing else log.error)(
                "cannot open turnstile port %s: %s", self.port, exc)
            self._open_failing = True
            return None
        if self._open_failing:
            log.warning("turnstile port %s open again", self.port)
        self._open_failing = False
        ser.reset_input_buffer()
        return ser

    def _read_loop(self) -> None:
        """Reader thread: bytes from the port to the loop; reopen a port that went away."""
        while not self._stop.is_set():
            ser = self._serial
            if ser is None:
                if self._stop.wait(self.timings.heartbeat_s):
                    return
                self._serial = self._open_port()
                continue
            try:
                data = ser.read(max(1, ser.in_waiting))
            except (serial.SerialException, OSError, TypeError) as exc:
                if self._stop.is_set():
                    return
                log.error("turnstile port %s failed: %s", self.port, exc)
                self._serial = None
                try:
                    ser.close()
                except (serial.SerialException, OSError):
                    pass
                continue
            if data:
                self._from_thread(self._on_bytes, data)

    async def _tick_loop(self) -> None:
        period = min(self.timings.ack_timeout_s, self.timings.heartbeat_s) / 4
        while True:
            await asyncio.sleep(period)
            self.link.poll(self._link_clock())
            self._pump()

    # -- the pump -------------------------------------------------------------------------
    def _on_bytes(self, data: bytes) -> None:
        self.link.receive_data(data, self._link_clock())
        self._pump()

    def _pump(self) -> None:
        for event in self.link.events_received():
            try:
                self._handle(event)
            except Exception:  # a bad event must never stop the bridge
                log.exception("handling controller link event %r", event)
        out = self.link.data_to_send()
        ser = self._serial
        if out and ser is not None:
            try:
                ser.write(out)
            except (serial.SerialException, OSError) as exc:
                self.write_errors += 1
                log.warning("write to %s failed: %s", self.port, exc)

    def _handle(self, event: object) -> None:
        match event:
            case Completed(seq=seq) | Failed(seq=seq):
                fut = self._waiting.pop(seq, None)
                if fut is not None and not fut.done():
                    fut.set_result(event.status if isinstance(event, Completed) else None)
            case Connected(rebooted=rebooted, firmware=firmware, version=version):
                log.info("turnstile controller %s v%d on %s%s", firmware, version, self.port,
                         " (rebooted)" if rebooted else "")
                self._connected.set()
                self._spawn(self._restore(rebooted))
            case Lost(reason=reason):
                self._connected.clear()
                self._on_fault(f"controller_{reason}")
            case Received(ftype=ftype, payload=payload):
                self._on_controller(ftype, payload)

    async def _restore(self, rebooted: bool) -> None:
        """After a (re)connect: put the controller back in the state we hold, then report
        recovery. A rebooted controller has forgotten an emergency and the indicator."""
        if self._emergency and await self._command(frames.EMERGENCY, b"\x01") is None:
            return  # lost again meanwhile: the next handshake restores
        signal, text = (Indicator.EMERGENCY, "EMERGENCY") if self._emergency else self._indicator
        await self._hw_indicate(signal, text)
        if await self._command(frames.QUERY, b"") is None or self.link.state != "ready":
            return
        self._on_recovered("controller_rebooted" if rebooted else "controller_answering")

    def _on_controller(self, ftype: int, payload: bytes) -> None:
        if ftype == frames.PASSAGE and len(payload) >= 2 and payload[0] in _WIRE_DIR:
            direction = _WIRE_DIR[payload[0]]
            kind = payload[1]
            if kind == frames.PASS_EGRESS and not self._emergency:
                self._spawn(self._enter_emergency("controller_egress"))
            key = f"passages_{direction.value}"
            if key in self.controller_state:  # mirror the controller's counter between queries
                self.controller_state[key] = (self.controller_state[key] + 1) & 0xFFFF
            self._on_passage(direction, authorised=kind == frames.PASS_AUTHORISED,
                             detail="" if kind == frames.PASS_AUTHORISED else
                             ("forced" if kind == frames.PASS_FORCED else "emergency_egress"))
        elif ftype == frames.ALARM and len(payload) >= 1:
            self._on_fire_contact(bool(payload[0]))
        elif ftype == frames.TAMPER:
            self._on_tamper(frames.decode_text(payload))
        elif ftype == frames.FAULT and len(payload) >= 1:
            self._emit("fault", detail=f"mechanism_{payload[0]}:{frames.decode_text(payload[1:])}")
        elif ftype == frames.MANUAL_RELEASE and len(payload) >= 1 and payload[0] in _WIRE_DIR:
            self._on_manual_release(_WIRE_DIR[payload[0]], release=False)
        elif ftype == frames.STATE and len(payload) >= 5:
            flags = payload[0]
            self.controller_state = {
                "emergency": bool(flags & frames.FLAG_EMERGENCY),
                "fire_open": bool(flags & frames.FLAG_FIRE_OPEN),
                "released_in": bool(flags & frames.FLAG_RELEASED_IN),
                "released_out": bool(flags & frames.FLAG_RELEASED_OUT),
                "passages_in": (payload[1] << 8) | payload[2],
                "passages_out": (payload[3] << 8) | payload[4],
            }
            for waiter in self._state_waiters:
                if not waiter.done():
                    waiter.set_result(dict(self.controller_state))
            self._state_waiters.clear()
            # Catch up on what happened while we could not hear it (ALARM frames given up,
            # or this agent restarted during an alarm).
            self._on_fire_contact(bool(flags & frames.FLAG_FIRE_OPEN))
            if flags & frames.FLAG_EMERGENCY and not self._emergency:
                self._spawn(self._enter_emergency("controller_emergency"))
        else:
            log.warning("dropped malformed controller event type 0x%02x payload %s", ftype, payload.hex())

    # -- commands -------------------------------------------------------------------------
    async def _command(self, ftype: int, payload: bytes) -> int | None:
        """Send one acknowledged command; the controller's status, or None if unanswered."""
        fut: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        seq = self.link.send(ftype, payload, self._link_clock())
        self._waiting[seq] = fut
        self._pump()
        return await fut

    async def _hw_release(self, direction: Direction) -> bool:
        hold = min(int(self.hold_s * 100), 0xFFFF)
        status = await self._command(frames.UNLOCK, bytes([_DIR_WIRE[direction], hold >> 8, hold & 0xFF]))
        return status == frames.STATUS_OK

    async def _hw_lock(self) -> bool:
        return await self._command(frames.LOCK, b"") == frames.STATUS_OK

    async def _hw_indicate(self, signal: Indicator, text: str) -> None:
        self._indicator = (signal, text) if signal is not Indicator.EMERGENCY else self._indicator
        payload = bytes([_IND_WIRE[signal]]) + frames.text_payload(text, frames.MAX_PAYLOAD - 1)
        if await self._command(frames.INDICATE, payload) is None:
            log.warning("indicator %s not confirmed by the controller", signal)

    async def _hw_emergency(self, on: bool) -> bool:
        status = await self._command(frames.EMERGENCY, b"\x01" if on else b"\x00")
        if status is None:
            # Unreachable controller: for "on" we still hold the emergency (restored on
            # reconnect); a reset cannot be confirmed, so it is refused.
            return on
        return status == frames.STATUS_OK

    def passage_count(self, direction: Direction) -> tuple[int, int] | None:
        """``(controller boot id, passages it counted in direction)`` as last heard, or None.

        The controller counts every turn of the arm (16 bits, from its boot). The gate notes
        this at each unlock so that, after a crash, it can tell whether the admitted fan
        went through (see ``gate_agent.passages``).
        """
        boot, key = self.link.boot_id, f"passages_{direction.value}"
        if boot is None or key not in self.controller_state:
            return None
        return boot, int(self.controller_state[key])

    async def query_state(self) -> dict[str, Any] | None:
        """Ask the controller for its state now: flags and passage counters (None: no answer)."""
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._state_waiters.append(waiter)
        if await self._command(frames.QUERY, b"") is None:
            waiter.cancel()
            return None
        try:
            state = await asyncio.wait_for(waiter, self.timings.ack_timeout_s * (self.timings.max_retries + 1))
        except TimeoutError:
            self.query_timeouts += 1
            log.warning("turnstile controller on %s: no answer to a state query (%d so far)", self.port,
                        self.query_timeouts)
            return None
        return {**state, "boot_id": self.link.boot_id}

    def stats(self) -> dict[str, Any]:
        """Link health for the gate's status page: frame counters, retransmits, state."""
        return {"link_state": self.link.state, "write_errors_count": self.write_errors,
                "query_timeouts_count": self.query_timeouts,
                **self.link.stats()}
