--- Hand-written specs for lnet.struct (CPython 3.11's struct module).
-- Expected bytes and values come from CPython (python3 on this machine).
local struct = require("lnet.struct")

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local function unhex(h)
  return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
end

--- Calls f and returns its error message (fails the spec if f succeeds).
local function err(f, ...)
  local ok, msg = pcall(f, ...)
  assert(not ok, "expected an error")
  return msg
end

--- One row per code under every prefix: size, packed bytes (from CPython), value.
local CODES = {
  { "x", size = 1, hex = "00" },
  { "c", size = 1, hex = "41", v = "A" },
  { "b", size = 1, hex = "9c", v = -100 },
  { "B", size = 1, hex = "c8", v = 200 },
  { "?", size = 1, hex = "01", v = true },
  { "h", size = 2, hex = "c7cf", v = -12345 },
  { "H", size = 2, hex = "31d4", v = 54321 },
  { "i", size = 4, hex = "eb32a4f8", v = -123456789 },
  { "I", size = 4, hex = "152b2cba", v = 3123456789 },
  { "l", size = 8, hex = "7929edffffffffff", v = -1234567 },
  { "L", size = 8, hex = "075b310000000000", v = 3234567 },
  { "q", size = 8, hex = "eb7e16820befddee", v = -1234567890123456789 },
  { "Q", size = 8, hex = "d20a1feb8ca954ab", v = math.mininteger + 3122306864379792082 },
  { "n", size = 8, hex = "337efeffffffffff", v = -98765 },
  { "N", size = 8, hex = "cd81010000000000", v = 98765 },
  { "e", size = 2, hex = "003e", v = 1.5 },
  { "f", size = 4, hex = "000010c0", v = -2.25 },
  { "d", size = 8, hex = "182d4454fb210940", v = 3.141592653589793 },
  { "3s", size = 3, hex = "686900", v = "hi", out = "hi\0" },
  { "3p", size = 3, hex = "026869", v = "hi" },
  { "P", size = 8, hex = "78563412ff7f0000", v = 140733498807928 },
  { "@x", size = 1, hex = "00" },
  { "@c", size = 1, hex = "41", v = "A" },
  { "@b", size = 1, hex = "9c", v = -100 },
  { "@B", size = 1, hex = "c8", v = 200 },
  { "@?", size = 1, hex = "01", v = true },
  { "@h", size = 2, hex = "c7cf", v = -12345 },
  { "@H", size = 2, hex = "31d4", v = 54321 },
  { "@i", size = 4, hex = "eb32a4f8", v = -123456789 },
  { "@I", size = 4, hex = "152b2cba", v = 3123456789 },
  { "@l", size = 8, hex = "7929edffffffffff", v = -1234567 },
  { "@L", size = 8, hex = "075b310000000000", v = 3234567 },
  { "@q", size = 8, hex = "eb7e16820befddee", v = -1234567890123456789 },
  { "@Q", size = 8, hex = "d20a1feb8ca954ab", v = math.mininteger + 3122306864379792082 },
  { "@n", size = 8, hex = "337efeffffffffff", v = -98765 },
  { "@N", size = 8, hex = "cd81010000000000", v = 98765 },
  { "@e", size = 2, hex = "003e", v = 1.5 },
  { "@f", size = 4, hex = "000010c0", v = -2.25 },
  { "@d", size = 8, hex = "182d4454fb210940", v = 3.141592653589793 },
  { "@3s", size = 3, hex = "686900", v = "hi", out = "hi\0" },
  { "@3p", size = 3, hex = "026869", v = "hi" },
  { "@P", size = 8, hex = "78563412ff7f0000", v = 140733498807928 },
  { "=x", size = 1, hex = "00" },
  { "=c", size = 1, hex = "41", v = "A" },
  { "=b", size = 1, hex = "9c", v = -100 },
  { "=B", size = 1, hex = "c8", v = 200 },
  { "=?", size = 1, hex = "01", v = true },
  { "=h", size = 2, hex = "c7cf", v = -12345 },
  { "=H", size = 2, hex = "31d4", v = 54321 },
  { "=i", size = 4, hex = "eb32a4f8", v = -123456789 },
  { "=I", size = 4, hex = "152b2cba", v = 3123456789 },
  { "=l", size = 4, hex = "7929edff", v = -1234567 },
  { "=L", size = 4, hex = "075b3100", v = 3234567 },
  { "=q", size = 8, hex = "eb7e16820befddee", v = -1234567890123456789 },
  { "=Q", size = 8, hex = "d20a1feb8ca954ab", v = math.mininteger + 3122306864379792082 },
  { "=n", err = "bad char in struct format" },
  { "=N", err = "bad char in struct format" },
  { "=e", size = 2, hex = "003e", v = 1.5 },
  { "=f", size = 4, hex = "000010c0", v = -2.25 },
  { "=d", size = 8, hex = "182d4454fb210940", v = 3.141592653589793 },
  { "=3s", size = 3, hex = "686900", v = "hi", out = "hi\0" },
  { "=3p", size = 3, hex = "026869", v = "hi" },
  { "=P", err = "bad char in struct format" },
  { "<x", size = 1, hex = "00" },
  { "<c", size = 1, hex = "41", v = "A" },
  { "<b", size = 1, hex = "9c", v = -100 },
  { "<B", size = 1, hex = "c8", v = 200 },
  { "<?", size = 1, hex = "01", v = true },
  { "<h", size = 2, hex = "c7cf", v = -12345 },
  { "<H", size = 2, hex = "31d4", v = 54321 },
  { "<i", size = 4, hex = "eb32a4f8", v = -123456789 },
  { "<I", size = 4, hex = "152b2cba", v = 3123456789 },
  { "<l", size = 4, hex = "7929edff", v = -1234567 },
  { "<L", size = 4, hex = "075b3100", v = 3234567 },
  { "<q", size = 8, hex = "eb7e16820befddee", v = -1234567890123456789 },
  { "<Q", size = 8, hex = "d20a1feb8ca954ab", v = math.mininteger + 3122306864379792082 },
  { "<n", err = "bad char in struct format" },
  { "<N", err = "bad char in struct format" },
  { "<e", size = 2, hex = "003e", v = 1.5 },
  { "<f", size = 4, hex = "000010c0", v = -2.25 },
  { "<d", size = 8, hex = "182d4454fb210940", v = 3.141592653589793 },
  { "<3s", size = 3, hex = "686900", v = "hi", out = "hi\0" },
  { "<3p", size = 3, hex = "026869", v = "hi" },
  { "<P", err = "bad char in struct format" },
  { ">x", size = 1, hex = "00" },
  { ">c", size = 1, hex = "41", v = "A" },
  { ">b", size = 1, hex = "9c", v = -100 },
  { ">B", size = 1, hex = "c8", v = 200 },
  { ">?", size = 1, hex = "01", v = true },
  { ">h", size = 2, hex = "cfc7", v = -12345 },
  { ">H", size = 2, hex = "d431", v = 54321 },
  { ">i", size = 4, hex = "f8a432eb", v = -123456789 },
  { ">I", size = 4, hex = "ba2c2b15", v = 3123456789 },
  { ">l", size = 4, hex = "ffed2979", v = -1234567 },
  { ">L", size = 4, hex = "00315b07", v = 3234567 },
  { ">q", size = 8, hex = "eeddef0b82167eeb", v = -1234567890123456789 },
  { ">Q", size = 8, hex = "ab54a98ceb1f0ad2", v = math.mininteger + 3122306864379792082 },
  { ">n", err = "bad char in struct format" },
  { ">N", err = "bad char in struct format" },
  { ">e", size = 2, hex = "3e00", v = 1.5 },
  { ">f", size = 4, hex = "c0100000", v = -2.25 },
  { ">d", size = 8, hex = "400921fb54442d18", v = 3.141592653589793 },
  { ">3s", size = 3, hex = "686900", v = "hi", out = "hi\0" },
  { ">3p", size = 3, hex = "026869", v = "hi" },
  { ">P", err = "bad char in struct format" },
  { "!x", size = 1, hex = "00" },
  { "!c", size = 1, hex = "41", v = "A" },
  { "!b", size = 1, hex = "9c", v = -100 },
  { "!B", size = 1, hex = "c8", v = 200 },
  { "!?", size = 1, hex = "01", v = true },
  { "!h", size = 2, hex = "cfc7", v = -12345 },
  { "!H", size = 2, hex = "d431", v = 54321 },
  { "!i", size = 4, hex = "f8a432eb", v = -123456789 },
  { "!I", size = 4, hex = "ba2c2b15", v = 3123456789 },
  { "!l", size = 4, hex = "ffed2979", v = -1234567 },
  { "!L", size = 4, hex = "00315b07", v = 3234567 },
  { "!q", size = 8, hex = "eeddef0b82167eeb", v = -1234567890123456789 },
  { "!Q", size = 8, hex = "ab54a98ceb1f0ad2", v = math.mininteger + 3122306864379792082 },
  { "!n", err = "bad char in struct format" },
  { "!N", err = "bad char in struct format" },
  { "!e", size = 2, hex = "3e00", v = 1.5 },
  { "!f", size = 4, hex = "c0100000", v = -2.25 },
  { "!d", size = 8, hex = "400921fb54442d18", v = 3.141592653589793 },
  { "!3s", size = 3, hex = "686900", v = "hi", out = "hi\0" },
  { "!3p", size = 3, hex = "026869", v = "hi" },
  { "!P", err = "bad char in struct format" },
}

describe("lnet.struct", function()
  it("is lnet.core's struct table", function()
    assert.are.equal(require("lnet.core").struct, struct)
    for _, name in ipairs({ "pack", "unpack", "unpack_from", "iter_unpack", "calcsize", "Struct" }) do
      assert.are.equal("function", type(struct[name]), name)
    end
  end)

  it("packs the tutorial's TFTP RRQ", function()
    assert.are.equal("\0\1test.jpg\0octet\0", struct.pack("!H8sb5sb", 1, "test.jpg", 0, "octet", 0))
    assert.are.same({ 1, "test.jpg", 0, "octet", 0 },
      { struct.unpack("!H8sb5sb", "\0\1test.jpg\0octet\0") })
    assert.are.same({ 3, 1 }, { struct.unpack("!HH", ("\0\3\0\1data"):sub(1, 4)) })
  end)

  describe("every code under every prefix", function()
    for _, row in ipairs(CODES) do
      local fmt = row[1]
      if row.err then
        it(fmt .. " is refused", function()
          assert.are.equal("struct.error: " .. row.err, err(struct.calcsize, fmt))
          assert.are.equal("struct.error: " .. row.err, err(struct.Struct, fmt))
        end)
      else
        it(fmt, function()
          assert.are.equal(row.size, struct.calcsize(fmt))
          local args = {}
          if row.v ~= nil then args[1] = row.v end
          local packed = struct.pack(fmt, table.unpack(args))
          assert.are.equal(row.hex, hex(packed))
          local out = { struct.unpack(fmt, packed) }
          if row.v == nil then
            assert.are.equal(0, #out)
          else
            local want = row.out
            if want == nil then want = row.v end
            assert.are.equal(want, out[1])
            assert.are.equal(math.type(want), math.type(out[1]))
          end
          local s = struct.Struct(fmt)
          assert.are.equal(row.hex, hex(s:pack(table.unpack(args))))
        end)
      end
    end
  end)

  describe("calcsize and alignment (Python documentation examples)", function()
    it("pads before a field, never at the end", function()
      assert.are.equal(5, struct.calcsize("@ic"))
      assert.are.equal(8, struct.calcsize("@ci"))
      assert.are.equal(8, struct.calcsize("ci"))
      assert.are.equal(5, struct.calcsize("=ci"))
      assert.are.equal("#\0\0\0\x15\x14\x13\x12", struct.pack("@ci", "#", 0x12131415))
      assert.are.equal("\x15\x14\x13\x12#", struct.pack("@ic", 0x12131415, "#"))
      assert.are.equal(24, struct.calcsize("@lhl"))
      assert.are.equal(18, struct.calcsize("@llh"))
      assert.are.equal(9, struct.calcsize("@qb"))
      assert.are.equal(40, struct.calcsize("@bhbiq?d"))
      assert.are.equal("01000200030000000400000000000000050000000000000001000000000000000000000000001840",
        hex(struct.pack("@bhbiq?d", 1, 2, 3, 4, 5, true, 6.0)))
    end)
    it("aligns the end with a zero count", function()
      assert.are.equal("010000000000000002000000000000000300000000000000",
        hex(struct.pack("@llh0l", 1, 2, 3)))
      assert.are.equal(2, struct.calcsize("b0h"))
      assert.are.equal(8, struct.calcsize("@b0q"))
      assert.are.equal(1, struct.calcsize("=b0q"))
    end)
    it("packs the documented standard-size examples", function()
      assert.are.equal("\1\0\2\0\0\0\3", struct.pack(">bhl", 1, 2, 3))
      assert.are.same({ 1, 2, 3 }, { struct.unpack(">bhl", "\1\0\2\0\0\0\3") })
      assert.are.equal(7, struct.calcsize(">bhl"))
      assert.are.equal("raymond   2\x12\x08\x01\x08", struct.pack("<10sHHb", "raymond   ", 4658, 264, 8))
    end)
    it("takes repeat counts and ignores whitespace", function()
      assert.are.equal(6, struct.calcsize("3H"))
      assert.are.equal(10, struct.calcsize("10x"))
      assert.are.equal(0, struct.calcsize("0s"))
      assert.are.equal(5, struct.calcsize("5p"))
      assert.are.equal(4, struct.calcsize(" h\t\n\v\fh\r "))
      assert.are.equal(0, struct.calcsize(""))
      assert.are.equal(0, struct.calcsize("<"))
      assert.are.same({ 1, 2, 3 }, { struct.unpack("<3H", "\1\0\2\0\3\0") })
      assert.are.equal("\0\0\0\1", struct.pack(">3xB", 1))
      assert.are.equal(9223372036854775807, struct.calcsize("9223372036854775807x"))
      assert.are.equal(9223372036854775806, struct.calcsize("4611686018427387903h"))
    end)
    it("reads the prefix only as the first character", function()
      assert.are.equal("struct.error: bad char in struct format", err(struct.calcsize, " <h"))
      assert.are.equal("struct.error: bad char in struct format", err(struct.calcsize, "h<h"))
    end)
  end)

  describe("values", function()
    it("range-checks integers at the limits", function()
      assert.are.equal("\x80\x7f", struct.pack("bb", -128, 127))
      assert.are.equal("\0\xff", struct.pack("BB", 0, 255))
      assert.are.equal("\x80\0\x7f\xff", struct.pack(">hh", -32768, 32767))
      assert.are.equal("\0\0\xff\xff", struct.pack(">HH", 0, 65535))
      assert.are.equal("\x80\0\0\0\xff\xff\xff\xff", struct.pack(">iI", -2147483648, 4294967295))
      assert.are.equal("\x7f\xff\xff\xff\0\0\0\0", struct.pack(">lL", 2147483647, 0))
      assert.are.same({ math.mininteger, math.maxinteger },
        { struct.unpack("<qq", struct.pack("<qq", math.mininteger, math.maxinteger)) })
    end)
    it("maps Q, N, P and native L above math.maxinteger to the 64-bit pattern", function()
      for _, fmt in ipairs({ "<Q", ">Q", "@Q", "N", "P", "@L" }) do
        for _, v in ipairs({ -1, math.mininteger, math.mininteger + 1, math.maxinteger, 0 }) do
          local packed = struct.pack(fmt, v)
          assert.are.equal(string.pack(fmt:sub(1, 1) == ">" and ">I8" or "<I8", v), packed)
          assert.are.equal(v, (struct.unpack(fmt, packed)))
        end
      end
      -- 2^64 - 1 and 2^63 as Python sees them
      assert.are.equal(-1, struct.unpack(">Q", "\xff\xff\xff\xff\xff\xff\xff\xff"))
      assert.are.equal(math.mininteger, struct.unpack(">Q", "\x80\0\0\0\0\0\0\0"))
      assert.is_true(math.ult(math.maxinteger, (struct.unpack(">Q", "\x80\0\0\0\0\0\0\1"))))
      assert.are.equal("\xff\xff\xff\xff\xff\xff\xff\xff", struct.pack(">Q", 0xffffffffffffffff))
      local all_ones = struct.unpack("<Q", struct.pack("<Q", -1))
      assert.are.equal("18446744073709551615", string.format("%u", all_ones))
      local top_bit = struct.unpack("@N", "\0\0\0\0\0\0\0\x80")
      assert.are.equal("9223372036854775808", string.format("%u", top_bit))
    end)
    it("packs booleans by Lua truthiness and unpacks any non-zero byte as true", function()
      assert.are.equal("\1\0\0\1\1", struct.pack("?????", true, false, nil, 0, ""))
      assert.are.same({ false, true, true, true }, { struct.unpack("????", "\0\1\2\xff") })
      assert.are.same({ true }, { struct.unpack(">?", "\x80") })
    end)
    it("pads or truncates s and clamps p as Python", function()
      assert.are.equal("ab\0\0", struct.pack("4s", "ab"))
      assert.are.equal("abcd", struct.pack("4s", "abcdef"))
      assert.are.equal("", struct.pack("0s", "abc"))
      assert.are.equal("a", struct.pack("s", "abc"))
      assert.are.equal("\4abcd", struct.pack("5p", "abcdefgh"))
      assert.are.equal("\2hi\0\0", struct.pack("5p", "hi"))
      assert.are.equal("\0", struct.pack("p", "hi"))
      local p300 = struct.pack("300p", string.rep("a", 400))
      assert.are.equal(300, #p300)
      assert.are.equal("\xffa", p300:sub(1, 2))
      assert.are.equal(string.rep("a", 255), (struct.unpack("300p", p300)))
      assert.are.equal("ab", (struct.unpack("3p", "\9ab")))
      assert.are.equal("a\0b", (struct.unpack("3s", "a\0b")))
      assert.are.equal("\xff", struct.pack("0px", ""))
      assert.are.equal("\1\xff\2\0", struct.pack("b0ph", 1, "", 2))
      assert.are.equal("", (struct.unpack("0p", "")))
      assert.are.same({ 1, "" }, { struct.unpack_from("b0p", "ab\1", 2) })
    end)
    it("packs c as a one-byte string", function()
      assert.are.equal("a\0b", struct.pack("3c", "a", "\0", "b"))
      assert.are.same({ "a", "\0", "b" }, { struct.unpack("3c", "a\0b") })
    end)
    it("packs half floats with round-half-even", function()
      assert.are.equal("7bff", hex(struct.pack(">e", 65504.0)))
      assert.are.equal("7bff", hex(struct.pack(">e", 65519.99)))
      assert.are.equal("0001", hex(struct.pack(">e", 2.0^-24)))
      assert.are.equal("0000", hex(struct.pack(">e", 2.0^-25)))
      assert.are.equal("3c00", hex(struct.pack(">e", 1 + 2.0^-11)))
      assert.are.equal("3c02", hex(struct.pack(">e", 1 + 3 * 2.0^-11)))
      assert.are.equal("8000", hex(struct.pack(">e", -0.0)))
      assert.are.equal("7c00", hex(struct.pack(">e", math.huge)))
      assert.are.equal("fc00", hex(struct.pack(">e", -math.huge)))
      assert.are.equal("7e00", hex(struct.pack(">e", (string.unpack("<d", unhex("000000000000f87f"))))))
      assert.are.equal("fe00", hex(struct.pack(">e", (string.unpack("<d", unhex("000000000000f8ff"))))))
      assert.are.equal(65504.0, struct.unpack(">e", "\x7b\xff"))
      assert.are.equal(2.0^-24, struct.unpack(">e", "\0\1"))
      local nan = struct.unpack("<e", "\x01\x7e")
      assert.is_true(nan ~= nan)
      assert.are.equal("000000000000f87f", hex(string.pack("<d", nan)))
      assert.are.equal("000000000000f8ff", hex(string.pack("<d", (struct.unpack("<e", "\x01\xfe")))))
      assert.are.equal("struct.error: float too large to pack with e format", err(struct.pack, "e", 65520.0))
      assert.are.equal("struct.error: float too large to pack with e format", err(struct.pack, ">e", 1e300))
      -- CPython rewords the overflow when the value was an int
      assert.are.equal("struct.error: int too large to convert", err(struct.pack, "e", 65520))
    end)
    it("refuses f overflow except in native mode, where it packs inf", function()
      assert.are.equal("0000807f", hex(struct.pack("@f", 3.5e38)))
      assert.are.equal("0000807f", hex(struct.pack("f", 1e300)))
      for _, fmt in ipairs({ "<f", ">f", "!f", "=f" }) do
        assert.are.equal("struct.error: float too large to pack with f format", err(struct.pack, fmt, 3.5e38))
      end
      assert.are.equal("7f7fffff", hex(struct.pack(">f", 3.4028235e38)))
      assert.are.equal("7f800000", hex(struct.pack(">f", math.huge)))
    end)
    it("accepts integers where a float is required", function()
      assert.are.equal(struct.pack("<d", 3.0), struct.pack("<d", 3))
      assert.are.equal(struct.pack("<f", 3.0), struct.pack("<f", 3))
      assert.are.equal(struct.pack("<e", 3.0), struct.pack("<e", 3))
      assert.are.equal("float", math.type((struct.unpack("<d", struct.pack("<d", 3)))))
    end)
    it("keeps double bits exactly, NaN payloads included", function()
      local bits = { "0100000000f07f7f", "000000000000f8ff", "0000000000000080", "0100000000000000" }
      for _, h in ipairs(bits) do
        local x = (string.unpack("<d", unhex(h)))
        assert.are.equal(h, hex(struct.pack("<d", x)))
        assert.are.equal(h, hex(string.pack("<d", (struct.unpack("<d", unhex(h))))))
      end
    end)
  end)

  -- Every value moves through one generic store/load by size and byte order;
  -- these pin repeat counts, runs of one code merged into one item, the byte
  -- swap on every size and sign extension (expected bytes from CPython 3.11).
  describe("repeat counts in every byte order", function()
    local ROWS = {
      { "<3h", "ffff02000080", { -1, 2, -32768 } },
      { ">3h", "ffff00028000", { -1, 2, -32768 } },
      { "!2H3B", "ffff0102007fff", { 65535, 258, 0, 127, 255 } },
      { "<2i2I", "feffffffffffff7fffffffff07000000", { -2, 2147483647, 4294967295, 7 } },
      { ">2i2I", "fffffffe7fffffffffffffff00000007", { -2, 2147483647, 4294967295, 7 } },
      { "=2q", "fdffffffffffffff0000000000000040", { -3, 1 << 62 } },
      { ">2q", "fffffffffffffffd4000000000000000", { -3, 1 << 62 } },
      { "<2e", "003efffb", { 1.5, -65504.0 } },
      { ">2e", "3e00fbff", { 1.5, -65504.0 } },
      { "<2f", "0000003f000050c0", { 0.5, -3.25 } },
      { ">2f", "3f000000c0500000", { 0.5, -3.25 } },
      { "<2d", "9a9999999999b93f00000000000004c0", { 0.1, -2.5 } },
      { ">2d", "3fb999999999999ac004000000000000", { 0.1, -2.5 } },
      { "@b3hi2q", "0100feff0300fcff0500000000000000faffffffffffffff0700000000000000",
        { 1, -2, 3, -4, 5, -6, 7 } },
      { "@3?2c", "0100017879", { true, false, true, "x", "y" } },
      { ">hh2H3xh", "0001ffff0002ffff000000fffe", { 1, -1, 2, 65535, -2 } },
      { "<h2hH", "010002000300ffff", { 1, 2, 3, 65535 } },
    }
    for _, row in ipairs(ROWS) do
      it(row[1], function()
        local fmt, want, vals = row[1], row[2], row[3]
        assert.are.equal(#want // 2, struct.calcsize(fmt))
        assert.are.equal(want, hex(struct.pack(fmt, table.unpack(vals))))
        assert.are.equal(want, hex(struct.Struct(fmt):pack(table.unpack(vals))))
        assert.are.same(vals, { struct.unpack(fmt, unhex(want)) })
      end)
    end

    it("sign-extends every signed size and keeps every unsigned one, both orders", function()
      local ones = string.rep("\xff", 15)
      local lo = unhex("8000800000008000000000000000" .. "80")
      local hi = unhex("80" .. "8000" .. "80000000" .. "8000000000000000")
      for _, fmt in ipairs({ "<bhiq", ">bhiq", "!bhiq" }) do
        assert.are.same({ -1, -1, -1, -1 }, { struct.unpack(fmt, ones) }, fmt)
        assert.are.same({ -128, -32768, -2147483648, math.mininteger },
          { struct.unpack(fmt, fmt:sub(1, 1) == "<" and lo or hi) }, fmt)
      end
      for _, fmt in ipairs({ "<BHIQ", ">BHIQ" }) do
        assert.are.same({ 255, 65535, 4294967295, -1 }, { struct.unpack(fmt, ones) }, fmt)
        assert.are.same({ 128, 32768, 2147483648, math.mininteger },
          { struct.unpack(fmt, fmt:sub(1, 1) == "<" and lo or hi) }, fmt)
      end
    end)

    it("range-checks each code of adjacent runs by its own limits and wording", function()
      local E = "struct.error: "
      local cases = {
        { "<hH", { 1, -1 }, "ushort format requires 0 <= number <= 65535" },
        { ">hH", { 1, -1 }, "argument out of range" },
        { "@hH", { 1, -1 }, "ushort format requires 0 <= number <= 65535" },
        { "<Hh", { 1, 40000 }, "short format requires -32768 <= number <= 32767" },
        { ">Hh", { 1, 40000 }, "'h' format requires -32768 <= number <= 32767" },
        { "<3h", { 1, 2, 40000 }, "short format requires -32768 <= number <= 32767" },
        { "!bB", { 1, 256 }, "ubyte format requires 0 <= number <= 255" },
        { "=iI", { 0, -1 }, "argument out of range" },
        { "<iI", { 2147483648, 0 }, "'i' format requires -2147483648 <= number <= 2147483647" },
      }
      for _, c in ipairs(cases) do
        assert.are.equal(E .. c[3], err(struct.pack, c[1], table.unpack(c[2])), c[1])
      end
    end)
  end)

  describe("errors (CPython's texts)", function()
    local E = "struct.error: "
    local function BAD(n, name, text) return ("bad argument #%d to '%s' (%s)"):format(n, name, text) end
    it("reports format errors", function()
      assert.are.equal(E .. "bad char in struct format", err(struct.calcsize, "Z"))
      assert.are.equal(E .. "bad char in struct format", err(struct.calcsize, "3 H"))
      assert.are.equal(E .. "bad char in struct format", err(struct.calcsize, "\xe9"))
      assert.are.equal(E .. "bad char in struct format", err(struct.pack, "<n", 1))
      assert.are.equal(E .. "bad char in struct format", err(struct.pack, ">P", 1))
      assert.are.equal(E .. "bad char in struct format", err(struct.pack, "!N", 1))
      assert.are.equal(E .. "repeat count given without format specifier", err(struct.calcsize, "3"))
      assert.are.equal(E .. "repeat count given without format specifier", err(struct.calcsize, "h12"))
      assert.are.equal(E .. "total struct size too long", err(struct.calcsize, "99999999999999999999x"))
      assert.are.equal(E .. "total struct size too long", err(struct.calcsize, "9223372036854775808x"))
      assert.are.equal(E .. "total struct size too long", err(struct.calcsize, "9223372036854775807xb"))
      assert.are.equal(E .. "total struct size too long", err(struct.calcsize, "4611686018427387904h"))
      assert.are.equal(E .. "total struct size too long", err(struct.calcsize, "b9223372036854775807q"))
      assert.are.equal(E .. "embedded null character", err(struct.calcsize, "h\0h"))
      assert.are.equal(E .. "embedded null character", err(struct.calcsize, "Z\0"))
      local TE = "Struct() argument 1 must be a str or bytes object, not "
      assert.are.equal(BAD(1, "pack", TE .. "int"), err(struct.pack, 5))
      assert.are.equal(BAD(1, "Struct", TE .. "nil"), err(struct.Struct))
      assert.are.equal(BAD(1, "calcsize", TE .. "table"), err(struct.calcsize, {}))
    end)
    it("reports integer range errors, worded per prefix as CPython", function()
      local cases = {
        { "b", 128, "byte format requires -128 <= number <= 127" },
        { ">b", -129, "byte format requires -128 <= number <= 127" },
        { "B", -1, "ubyte format requires 0 <= number <= 255" },
        { "!B", 256, "ubyte format requires 0 <= number <= 255" },
        { "h", 32768, "short format requires -32768 <= number <= 32767" },
        { "<h", -32769, "short format requires -32768 <= number <= 32767" },
        { "=h", 32768, "short format requires -32768 <= number <= 32767" },
        { ">h", 32768, "'h' format requires -32768 <= number <= 32767" },
        { "!h", -32769, "'h' format requires -32768 <= number <= 32767" },
        { "H", -1, "ushort format requires 0 <= number <= 65535" },
        { "<H", 65536, "ushort format requires 0 <= number <= 65535" },
        { ">H", -1, "argument out of range" },
        { ">H", 65536, "'H' format requires 0 <= number <= 65535" },
        { "i", 2147483648, "'i' format requires -2147483648 <= number <= 2147483647" },
        { ">i", -2147483649, "'i' format requires -2147483648 <= number <= 2147483647" },
        { "I", -1, "argument out of range" },
        { "<I", 4294967296, "'I' format requires 0 <= number <= 4294967295" },
        { "<l", 2147483648, "'l' format requires -2147483648 <= number <= 2147483647" },
        { ">L", -1, "argument out of range" },
        { "=L", 4294967296, "'L' format requires 0 <= number <= 4294967295" },
      }
      for _, c in ipairs(cases) do
        assert.are.equal(E .. c[3], err(struct.pack, c[1], c[2]), c[1] .. " " .. c[2])
      end
    end)
    it("reports wrong types", function()
      for _, v in ipairs({ 1.0, 1.5, "1", true, {}, 0 / 0 }) do
        assert.are.equal(E .. "required argument is not an integer", err(struct.pack, "h", v))
        assert.are.equal(E .. "required argument is not an integer", err(struct.pack, ">Q", v))
      end
      assert.are.equal(E .. "required argument is not an integer", err(struct.pack, "h", nil))
      for _, v in ipairs({ "1", true, {} }) do
        assert.are.equal(E .. "required argument is not a float", err(struct.pack, "d", v))
        assert.are.equal(E .. "required argument is not a float", err(struct.pack, "<f", v))
        assert.are.equal(E .. "required argument is not a float", err(struct.pack, "e", v))
      end
      for _, v in ipairs({ "", "ab", 1, true }) do
        assert.are.equal(E .. "char format requires a bytes object of length 1", err(struct.pack, "c", v))
      end
      assert.are.equal(E .. "argument for 's' must be a bytes object", err(struct.pack, "s", 5))
      assert.are.equal(E .. "argument for 'p' must be a bytes object", err(struct.pack, "p", false))
      -- CPython's TypeErrors are argument errors naming the function
      assert.are.equal(BAD(2, "unpack", "a bytes-like object is required, not 'int'"),
        err(struct.unpack, "h", 5))
      assert.are.equal(BAD(2, "unpack_from", "a bytes-like object is required, not 'nil'"),
        err(struct.unpack_from, "h"))
      assert.are.equal(BAD(3, "unpack_from", "'float' object cannot be interpreted as an integer"),
        err(struct.unpack_from, "h", "ab", 1.0))
      local S = struct.Struct("h")
      assert.are.equal(BAD(1, "unpack", "a bytes-like object is required, not 'int'"), err(S.unpack, S, 5))
    end)
    it("reports item counts and buffer sizes", function()
      assert.are.equal(E .. "pack expected 2 items for packing (got 1)", err(struct.pack, "hh", 1))
      assert.are.equal(E .. "pack expected 0 items for packing (got 1)", err(struct.pack, "4x", 1))
      assert.are.equal(E .. "pack expected 1 items for packing (got 2)", err(struct.pack, "10s", "a", "b"))
      assert.are.equal(E .. "unpack requires a buffer of 2 bytes", err(struct.unpack, "h", "abc"))
      assert.are.equal(E .. "unpack requires a buffer of 4 bytes",
        err(function() return struct.Struct("!HH"):unpack("") end))
      assert.are.equal(E .. "unpack_from requires a buffer of at least 7 bytes for unpacking 2 bytes at " ..
        "offset 5 (actual buffer size is 3)", err(struct.unpack_from, "h", "abc", 5))
      assert.are.equal(E .. "unpack_from requires a buffer of at least 4 bytes for unpacking 2 bytes at " ..
        "offset 2 (actual buffer size is 3)", err(struct.unpack_from, "h", "abc", 2))
      assert.are.equal(E .. "not enough data to unpack 2 bytes at offset -1",
        err(struct.unpack_from, "h", "abc", -1))
      assert.are.equal(E .. "not enough data to unpack 4 bytes at offset -3",
        err(struct.unpack_from, "i", "", -3))
      assert.are.equal(E .. "offset -1 out of range for 0-byte buffer", err(struct.unpack_from, "0s", "", -1))
      assert.are.equal(E .. "offset -5 out of range for 3-byte buffer",
        err(struct.unpack_from, "h", "abc", -5))
      assert.are.equal(E .. "iterative unpacking requires a buffer of a multiple of 2 bytes",
        err(struct.iter_unpack, "h", "abc"))
      assert.are.equal(E .. "cannot iteratively unpack with a struct of length 0",
        err(struct.iter_unpack, "", ""))
    end)
    it("refuses a method called without an object (forgotten colon)", function()
      local S, T = struct.Struct("<h"), struct.Struct(">h")
      assert.are.equal("calling 'pack' on bad self (Struct expected, got number)", err(S.pack, 1))
      assert.are.equal("calling 'pack' on bad self (Struct expected, got string)", err(S.pack, "x", 1))
      assert.are.equal("calling 'unpack' on bad self (Struct expected, got string)", err(S.unpack, "ab"))
      assert.are.equal("calling 'unpack_from' on bad self (Struct expected, got string)",
        err(S.unpack_from, "ab"))
      assert.are.equal("calling 'iter_unpack' on bad self (Struct expected, got string)",
        err(S.iter_unpack, "ab"))
      -- methods are bound to their object, like Python's
      assert.are.equal("\1\0", S.pack(T, 1))
      local fake = setmetatable({}, getmetatable(S))
      assert.has_error(function() return fake:pack(1) end)
      assert.has_error(function() return tostring(fake) end)
      assert.has_error(function() return getmetatable(S).__tostring(io.stdout) end)
    end)
  end)

  describe("unpack_from", function()
    local data = "\0\1\0\2\0\3"
    it("counts offsets from 0 and negative offsets from the end", function()
      assert.are.same({ 1, 2, 3 }, { struct.unpack_from(">3H", data) })
      assert.are.same({ 1, 2, 3 }, { struct.unpack_from(">3H", data, 0) })
      assert.are.same({ 2 }, { struct.unpack_from(">H", data, 2) })
      assert.are.same({ 3 }, { struct.unpack_from(">H", data, -2) })
      assert.are.same({ 2, 3 }, { struct.unpack_from(">HH", data, -4) })
      assert.are.same({ 1, 2, 3 }, { struct.unpack_from(">3H", data, -6) })
      assert.are.same({}, { struct.unpack_from(">0H", data, 6) })
      assert.are.same({ 3 }, { struct.Struct(">H"):unpack_from(data, 4) })
      assert.are.same({ 3 }, { struct.Struct(">H"):unpack_from(data, -2) })
      assert.are.same({ 1 }, { struct.Struct(">H"):unpack_from(data) })
      assert.are.same({ 258 }, { struct.unpack_from(">H", "\1\2extra") })
    end)
  end)

  describe("iter_unpack", function()
    it("yields one record per step", function()
      local got = {}
      for a, b in struct.iter_unpack("<hb", "\1\0\2\3\0\4\5\0\6") do got[#got + 1] = { a, b } end
      assert.are.same({ { 1, 2 }, { 3, 4 }, { 5, 6 } }, got)
      got = {}
      for v in struct.Struct(">H"):iter_unpack("\0\1\0\2") do got[#got + 1] = v end
      assert.are.same({ 1, 2 }, got)
      local n = 0
      for _ in struct.iter_unpack("h", "") do n = n + 1 end
      assert.are.equal(0, n)
      got = {}
      for v in struct.iter_unpack("?", "\0\1") do got[#got + 1] = v end
      assert.are.same({ false, true }, got)
    end)
  end)

  describe("lnet.buffer data (Python's bytearray after recv_into)", function()
    local buffer = require("lnet").buffer

    it("unpacks a buffer exactly as the same bytes in a string", function()
      local bytes = struct.pack("!HHi", 3, 7, -99)
      local b = buffer(64, bytes)
      assert.are.same({ struct.unpack("!HHi", bytes) }, { struct.unpack("!HHi", b) })
      assert.are.same({ 7 }, { struct.unpack_from("!H", b, 2) })
      assert.are.same({ -99 }, { struct.unpack_from("!i", b, -4) })
      local S = struct.Struct("!HH")
      assert.are.same({ 3, 7 }, { S:unpack_from(b) })
      local got = {}
      for x, y in S:iter_unpack(buffer(8, bytes:sub(1, 8))) do got[#got + 1] = { x, y } end
      assert.are.same({ { 3, 7 }, { 0xFFFF, 0xFF9D } }, got)
      -- only the bytes held count, not the capacity
      assert.has_error(function() struct.unpack("!HHi", buffer(64, bytes:sub(1, 4))) end,
        "struct.error: unpack requires a buffer of 8 bytes")
    end)

    it("stops with an error if the buffer shrinks in the middle of a record", function()
      local b = buffer(16, ("\0\1"):rep(4))
      local it = struct.iter_unpack("!HH", b)
      assert.are.same({ 1, 1 }, { it() })
      b:set("\0\1\0\1\0") -- 5 bytes: the next record would read past them
      assert.has_error(it, "struct.error: the buffer shrank during iterative unpacking")
    end)
  end)

  describe("Struct objects", function()
    it("have size, format, methods and tostring", function()
      local S = struct.Struct("!HH")
      assert.are.equal(4, S.size)
      assert.are.equal("!HH", S.format)
      assert.are.equal("Struct('!HH')", tostring(S))
      assert.are.equal("\0\4\0\5", S:pack(4, 5))
      assert.are.same({ 4, 5 }, { S:unpack("\0\4\0\5") })
      assert.is_nil(S.nothing)
      assert.is_nil(S[1])
      assert.are.equal("lnet.Struct", getmetatable(S).__name)
      local T = struct.Struct("@ci ")
      assert.are.equal(8, T.size)
      assert.are.equal("@ci ", T.format)
      assert.are.equal(0, struct.Struct("").size)
      assert.are.equal("", struct.Struct(""):pack())
    end)
    it("share nothing between objects", function()
      local A, B = struct.Struct("<h"), struct.Struct(">h")
      assert.are.equal("\1\0", A:pack(1))
      assert.are.equal("\0\1", B:pack(1))
      assert.are_not.equal(A.pack, B.pack) -- methods are bound to their object
      assert.are.equal(A.pack, A.pack)
    end)
  end)

  describe("the module-level cache", function()
    it("keeps compiled formats, at most 100, cleared whole when full", function()
      struct._clearcache()
      assert.are.equal(0, struct._cachesize())
      struct.pack("!HH", 1, 2)
      struct.unpack("!HH", "\0\1\0\2")
      struct.calcsize("!HH")
      assert.are.equal(1, struct._cachesize())
      for i = 1, 99 do struct.calcsize(i .. "x") end
      assert.are.equal(100, struct._cachesize())
      assert.are.equal(4, struct.calcsize("!HH")) -- a hit does not grow it
      assert.are.equal(100, struct._cachesize())
      assert.are.equal(1000, struct.calcsize("1000x")) -- a miss when full clears it first
      assert.are.equal(1, struct._cachesize())
      struct._clearcache()
      assert.are.equal(0, struct._cachesize())
    end)
    it("does not cache a format that fails to compile", function()
      struct._clearcache()
      assert.has_error(function() struct.calcsize("Z") end)
      assert.are.equal(0, struct._cachesize())
    end)
  end)

  it("packs and unpacks large records through the heap buffer", function()
    local big = string.rep("x", 5000)
    assert.are.equal(big .. "\0\0\0\1", struct.pack(">5000sI", big, 1))
    assert.are.same({ big, 1 }, { struct.unpack(">5000sI", big .. "\0\0\0\1") })
    local n = select("#", struct.unpack("1000B", string.rep("\1", 1000)))
    assert.are.equal(1000, n)
    assert.are.equal("struct.error: too many values to unpack (1000001)",
      err(struct.unpack, "1000001B", string.rep("\1", 1000001)))
  end)
end)
