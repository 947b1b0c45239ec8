"""Scanner drivers behind one async interface: camera, serial, keyboard-wedge, simulator."""
