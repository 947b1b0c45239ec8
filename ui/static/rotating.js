// Rotating ticket codes on the fan's phone: the same function as tickets/rotating.py.
//
//   code = base32(HMAC-SHA256(secret, "GHR1" || step as 8-byte big-endian signed))[0:8]
//   step = floor(unix seconds / 15)
//
// SHA-256 and HMAC are written out here because crypto.subtle exists only on secure
// (https) origins, and the page must work on plain http and offline once loaded. The test
// vectors in tests/hub/test_fanpage.py pin this file to the Python implementation.
(function (root) {
  "use strict";

  var K = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
  ];

  function rotr(x, n) { return (x >>> n) | (x << (32 - n)); }

  // SHA-256 of a Uint8Array, as a Uint8Array of 32 bytes.
  function sha256(msg) {
    var len = msg.length;
    var padded = new Uint8Array(((len + 9 + 63) >> 6) << 6);
    padded.set(msg);
    padded[len] = 0x80;
    var bits = len * 8;
    var view = new DataView(padded.buffer);
    view.setUint32(padded.length - 8, Math.floor(bits / 0x100000000));
    view.setUint32(padded.length - 4, bits >>> 0);
    var h = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    var w = new Array(64);
    for (var off = 0; off < padded.length; off += 64) {
      for (var i = 0; i < 16; i++) { w[i] = view.getUint32(off + i * 4); }
      for (i = 16; i < 64; i++) {
        var s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
        var s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
        w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
      }
      var a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
      for (i = 0; i < 64; i++) {
        var S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
        var ch = (e & f) ^ (~e & g);
        var t1 = (hh + S1 + ch + K[i] + w[i]) | 0;
        var S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
        var maj = (a & b) ^ (a & c) ^ (b & c);
        var t2 = (S0 + maj) | 0;
        hh = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
      }
      h[0] = (h[0] + a) | 0; h[1] = (h[1] + b) | 0; h[2] = (h[2] + c) | 0; h[3] = (h[3] + d) | 0;
      h[4] = (h[4] + e) | 0; h[5] = (h[5] + f) | 0; h[6] = (h[6] + g) | 0; h[7] = (h[7] + hh) | 0;
    }
    var out = new Uint8Array(32);
    var ov = new DataView(out.buffer);
    for (i = 0; i < 8; i++) { ov.setUint32(i * 4, h[i] >>> 0); }
    return out;
  }

  // HMAC-SHA256 (RFC 2104) of Uint8Arrays.
  function hmacSha256(key, msg) {
    if (key.length > 64) { key = sha256(key); }
    var ipad = new Uint8Array(64 + msg.length);
    var opad = new Uint8Array(64 + 32);
    for (var i = 0; i < 64; i++) {
      var k = i < key.length ? key[i] : 0;
      ipad[i] = k ^ 0x36;
      opad[i] = k ^ 0x5c;
    }
    ipad.set(msg, 64);
    opad.set(sha256(ipad), 64);
    return sha256(opad);
  }

  var B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

  // RFC 4648 base32 of 5 bytes: exactly 8 characters.
  function base32of5(bytes) {
    var out = "";
    var bitsVal = 0, bits = 0;
    for (var i = 0; i < 5; i++) {
      bitsVal = (bitsVal << 8) | bytes[i];
      bits += 8;
      while (bits >= 5) {
        out += B32[(bitsVal >>> (bits - 5)) & 31];
        bits -= 5;
      }
      bitsVal &= (1 << bits) - 1;
    }
    return out;
  }

  function stepAt(unixSeconds) { return Math.floor(unixSeconds / 15); }

  // The 8-byte big-endian two's complement form of an integer step (|step| < 2^53).
  function stepBytes(step) {
    var hi = Math.floor(step / 0x100000000);
    var lo = step - hi * 0x100000000;
    var out = new Uint8Array(8);
    var view = new DataView(out.buffer);
    view.setUint32(0, hi >>> 0);
    view.setUint32(4, lo >>> 0);
    return out;
  }

  function codeFor(secret, step) {
    var msg = new Uint8Array(12);
    msg.set([0x47, 0x48, 0x52, 0x31]);  // "GHR1"
    msg.set(stepBytes(step), 4);
    return base32of5(hmacSha256(secret, msg));
  }

  function codeAt(secret, unixSeconds) { return codeFor(secret, stepAt(unixSeconds)); }

  function fromBase64(text) {
    var bin = typeof atob === "function" ? atob(text) : Buffer.from(text, "base64").toString("binary");
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out;
  }

  var api = {
    STEP_S: 15, sha256: sha256, hmacSha256: hmacSha256, stepAt: stepAt, codeFor: codeFor,
    codeAt: codeAt, fromBase64: fromBase64
  };
  if (typeof module !== "undefined" && module.exports) {
    module.exports = api;
  } else {
    root.GatehouseRotating = api;
  }
})(this);
