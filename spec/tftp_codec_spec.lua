-- Specs for the TFTP codec (csrc/tftp.c, lua/lnet/tftp_codec.lua).
local codec = require("lnet.tftp_codec")

local function u16(n)
  return string.char(n >> 8 & 0xFF, n & 0xFF)
end

local function fails(reason_pattern, ok, reason)
  assert.is_nil(ok)
  assert.is_string(reason)
  if reason_pattern then assert.matches(reason_pattern, reason) end
end

describe("tftp codec", function()
  describe("constants", function()
    it("has opcodes, error codes, limits and messages", function()
      assert.same({1, 2, 3, 4, 5, 6},
        {codec.RRQ, codec.WRQ, codec.DATA, codec.ACK, codec.ERROR, codec.OACK})
      assert.equal(0, codec.ERR_UNDEFINED)
      assert.equal(1, codec.ERR_NOT_FOUND)
      assert.equal(2, codec.ERR_ACCESS)
      assert.equal(3, codec.ERR_DISK_FULL)
      assert.equal(4, codec.ERR_ILLEGAL)
      assert.equal(5, codec.ERR_UNKNOWN_TID)
      assert.equal(6, codec.ERR_EXISTS)
      assert.equal(7, codec.ERR_NO_USER)
      assert.equal(8, codec.ERR_OPTION)
      assert.equal("File not found", codec.messages[1])
      for code = 0, 8 do assert.is_string(codec.messages[code]) end
      assert.same({ "RRQ", "WRQ", "DATA", "ACK", "ERROR", "OACK" }, codec.opnames)
      assert.equal(512, codec.MAX_REQUEST)
      assert.same({ 1, 255, 1, 65535 },
        { codec.TIMEOUT_MIN, codec.TIMEOUT_MAX, codec.WINDOWSIZE_MIN, codec.WINDOWSIZE_MAX })
      assert.equal(8, codec.BLKSIZE_MIN)
      assert.equal(65464, codec.BLKSIZE_MAX)
    end)
  end)

  describe("requests", function()
    it("encodes an RRQ byte for byte", function()
      assert.equal("\0\1file.bin\0octet\0", codec.rrq("file.bin", "octet"))
      assert.equal("\0\1f\0octet\0", codec.rrq("f"))
      assert.equal("\0\2f\0netascii\0", codec.wrq("f", "netascii"))
    end)

    it("keeps option order and case as given in an array", function()
      local p = codec.rrq("f", "octet", {{"TSize", 0}, {"blksize", 1428}, {"windowsize", "16"}})
      assert.equal("\0\1f\0octet\0TSize\0000\0blksize\0001428\0windowsize\00016\0", p)
    end)

    it("sorts a map of options by name", function()
      local p = codec.wrq("f", "octet", {tsize = 100, blksize = 8, timeout = 3})
      assert.equal("\0\2f\0octet\0blksize\0008\0timeout\0003\0tsize\000100\0", p)
    end)

    it("round-trips RRQ and WRQ with options, lowercasing names and mode", function()
      for _, enc in ipairs({codec.rrq, codec.wrq}) do
        local p = assert(enc("dir/Some File.txt", "NetASCII",
          {{"BLKSIZE", 1428}, {"tsize", 0}, {"Timeout", 5}, {"multicast", ""}}))
        local d = assert(codec.decode(p))
        assert.equal(enc == codec.rrq and "RRQ" or "WRQ", d.op)
        assert.equal(enc == codec.rrq and 1 or 2, d.opcode)
        assert.equal("dir/Some File.txt", d.filename)
        assert.equal("netascii", d.mode)
        assert.same({blksize = "1428", tsize = "0", timeout = "5", multicast = ""}, d.options)
        assert.same({"blksize", "tsize", "timeout", "multicast"}, d.order)
      end
    end)

    it("decodes a request without options", function()
      local d = assert(codec.decode("\0\1a\0OCTET\0"))
      assert.same({op = "RRQ", opcode = 1, filename = "a", mode = "octet", options = {}, order = {}}, d)
    end)

    it("tolerates NUL padding after the last option", function()
      local d = assert(codec.decode("\0\1a\0octet\0\0\0\0"))
      assert.same({}, d.order)
      d = assert(codec.decode("\0\1a\0octet\0blksize\0001024\0\0"))
      assert.same({"blksize"}, d.order)
    end)

    it("accepts a request of exactly 512 bytes and refuses 513", function()
      local name = ("n"):rep(512 - 2 - 1 - 6)
      local p = assert(codec.rrq(name, "octet"))
      assert.equal(512, #p)
      assert.truthy(codec.decode(p))
      fails("512", codec.rrq(name .. "n", "octet"))
      fails("512", codec.decode(p:sub(1, 2) .. "n" .. p:sub(3)))
      fails("512", codec.rrq("f", "octet", {{"x", ("v"):rep(600)}}))
    end)

    it("refuses unencodable requests with nil, reason", function()
      fails("empty filename", codec.rrq(""))
      fails("NUL", codec.rrq("a\0b"))
      fails("empty mode", codec.rrq("a", ""))
      fails("NUL", codec.wrq("a", "oct\0et"))
      fails("duplicate", codec.rrq("a", "octet", {{"blksize", 512}, {"BlkSize", 1024}}))
      fails("duplicate", codec.rrq("a", "octet", {blksize = 512, BLKSIZE = 1024}))
      fails("empty option name", codec.rrq("a", "octet", {{"", 1}}))
      fails("NUL", codec.rrq("a", "octet", {{"a\0b", 1}}))
      fails("NUL", codec.rrq("a", "octet", {{"ab", "1\0"}}))
    end)

    it("raises on wrong argument types", function()
      assert.has_error(function() codec.rrq() end)
      assert.has_error(function() codec.rrq("a", "octet", "blksize") end)
      assert.has_error(function() codec.rrq("a", "octet", {{"blksize", true}}) end)
      assert.has_error(function() codec.rrq("a", "octet", {{"blksize", 1.5}}) end)
      assert.has_error(function() codec.rrq("a", "octet", {"blksize"}) end)
      assert.has_error(function() codec.rrq("a", "octet", {[1] = {1, 2}}) end)
      assert.has_error(function() codec.rrq("a", "octet", {[5] = 1}) end)
    end)

    it("accepts integral floats as option values", function()
      assert.equal("\0\1a\0octet\0blksize\0001024\0", codec.rrq("a", "octet", {{"blksize", 1024.0}}))
    end)
  end)

  describe("DATA", function()
    it("round-trips through decode and parse_data", function()
      for _, n in ipairs({0, 1, 511, 512}) do
        local payload = ("x"):rep(n)
        local p = codec.data(7, payload)
        assert.equal("\0\3\0\7" .. payload, p)
        assert.same({op = "DATA", opcode = 3, block = 7, data = payload}, codec.decode(p))
        local block, data = codec.parse_data(p)
        assert.equal(7, block)
        assert.equal(payload, data)
      end
    end)

    it("cuts the payload from a buffer like string.sub", function()
      local buf = "0123456789"
      assert.equal("\0\3\0\1" .. "234", codec.data(1, buf, 3, 5))
      assert.equal("\0\3\0\1" .. "789", codec.data(1, buf, 8))
      assert.equal("\0\3\0\1" .. "789", codec.data(1, buf, -3))
      assert.equal("\0\3\0\1" .. "89", codec.data(1, buf, 9, 100))
      assert.equal("\0\3\0\1", codec.data(1, buf, 11))
      assert.equal("\0\3\0\1", codec.data(1, buf, 5, 4))
    end)

    it("wraps block numbers modulo 65536 and refuses negative ones", function()
      assert.equal(0, (codec.parse_data(codec.data(65536, ""))))
      assert.equal(65535, (codec.parse_data(codec.data(65535, ""))))
      assert.equal(1, codec.parse_ack(codec.ack(65537)))
      assert.has_error(function() codec.data(-1, "") end)
      assert.has_error(function() codec.ack(-1) end)
    end)

    it("bounds the payload by blksize", function()
      local p = codec.data(1, ("y"):rep(513))
      fails("block size", codec.decode(p))
      fails("block size", codec.parse_data(p))
      assert.truthy(codec.decode(p, 1024))
      assert.equal(1, (codec.parse_data(p, 513)))
      fails("block size", codec.parse_data(p, 512))
      fails("block size", codec.parse_data(codec.data(1, "123456789"), 8))
      local big = codec.data(1, ("z"):rep(65464))
      assert.equal(65464, #select(2, codec.parse_data(big, 65464)))
      assert.has_error(function() codec.data(1, ("z"):rep(65465)) end)
      assert.has_error(function() codec.parse_data(big, 7) end)
      assert.has_error(function() codec.parse_data(big, 65465) end)
    end)

    it("reports an ERROR met on the hot path", function()
      local ok, kind, code, msg = codec.parse_data(codec.error(1, "nope"))
      assert.is_nil(ok)
      assert.equal("error", kind)
      assert.equal(1, code)
      assert.equal("nope", msg)
      fails("unexpected ACK", codec.parse_data(codec.ack(1)))
      fails("unexpected OACK", codec.parse_data(codec.oack({{"blksize", 1024}})))
      fails("too short", codec.parse_data("\0\3\0"))
    end)
  end)

  describe("ACK", function()
    it("round-trips", function()
      for _, b in ipairs({0, 1, 255, 256, 65535}) do
        local p = codec.ack(b)
        assert.equal("\0\4" .. u16(b), p)
        assert.same({op = "ACK", opcode = 4, block = b}, codec.decode(p))
        assert.equal(b, codec.parse_ack(p))
      end
    end)

    it("refuses junk after an ACK and short ACKs", function()
      fails("4 bytes", codec.decode("\0\4\0\1x"))
      fails("4 bytes", codec.parse_ack("\0\4\0\1\0"))
      fails("too short", codec.decode("\0\4\0"))
      fails("too short", codec.parse_ack("\0\4"))
      fails("unexpected DATA", codec.parse_ack(codec.data(1, "x")))
      local ok, kind, code, msg = codec.parse_ack(codec.error(3))
      assert.is_nil(ok)
      assert.same({"error", 3, "Disk full or allocation exceeded"}, {kind, code, msg})
    end)
  end)

  describe("ERROR", function()
    it("round-trips with given and default messages", function()
      assert.equal("\0\5\0\1File not found\0", codec.error(codec.ERR_NOT_FOUND))
      assert.same({op = "ERROR", opcode = 5, code = 2, message = "go away"},
        codec.decode(codec.error(2, "go away")))
      assert.same({op = "ERROR", opcode = 5, code = 99, message = ""}, codec.decode(codec.error(99)))
      assert.equal("", codec.decode(codec.error(0, "")).message)
      for code = 0, 8 do assert.equal(codec.messages[code], codec.decode(codec.error(code)).message) end
    end)

    it("cuts messages at NUL and to 512 bytes", function()
      assert.equal("\0\5\0\0ab\0", codec.error(0, "ab\0cd"))
      local p = codec.error(0, ("m"):rep(1000))
      assert.equal(512, #p)
      assert.equal(507, #codec.decode(p).message)
    end)

    it("refuses messages without a terminator, ignores bytes after it", function()
      fails("unterminated ERROR", codec.decode("\0\5\0\1"))
      fails("unterminated ERROR", codec.decode("\0\5\0\1abc"))
      fails("too short", codec.decode("\0\5\0"))
      fails("too short", codec.decode("\0\5"))
      fails("unterminated ERROR", codec.parse_ack("\0\5\0\1abc"))
      assert.equal("abc", codec.decode("\0\5\0\1abc\0junk").message)
    end)

    it("raises on a bad code", function()
      assert.has_error(function() codec.error(-1) end)
      assert.has_error(function() codec.error(65536) end)
      assert.has_error(function() codec.error("x") end)
    end)
  end)

  describe("OACK", function()
    it("round-trips, keeping order", function()
      local p = assert(codec.oack({{"tsize", 12345}, {"blksize", "1428"}}))
      assert.equal("\0\6tsize\00012345\0blksize\0001428\0", p)
      local d = assert(codec.decode(p))
      assert.same({op = "OACK", opcode = 6, options = {tsize = "12345", blksize = "1428"},
                   order = {"tsize", "blksize"}}, d)
    end)

    it("refuses an empty or oversized OACK", function()
      fails("without options", codec.oack({}))
      fails("without options", codec.decode("\0\6\0\0"))
      fails("512", codec.oack({{"x", ("v"):rep(600)}}))
      fails("512", codec.decode("\0\6x\0" .. ("v"):rep(600) .. "\0"))
      assert.has_error(function() codec.oack() end)
    end)
  end)

  describe("malformed packets", function()
    local cases = {
      {"", "too short"},
      {"\0", "too short"},
      {"\0\1", "too short"},
      {"\0\1a", "too short"},
      {"\0\0\0\0", "unknown opcode"},
      {"\0\7\0\0", "unknown opcode"},
      {"\1\1a\0octet\0", "unknown opcode"},
      {"\255\255\0\0", "unknown opcode"},
      {"\0\1file", "unterminated filename"},
      {"\0\1\0octet\0", "empty filename"},
      {"\0\1file\0", "missing mode"},
      {"\0\1file\0octet", "unterminated mode"},
      {"\0\1file\0\0", "empty mode"},
      {"\0\2file\0octet\0blksize", "unterminated option name"},
      {"\0\2file\0octet\0blksize\0", "without a value"},
      {"\0\1file\0octet\0blksize\0001024", "unterminated option value"},
      {"\0\1file\0octet\0\0blksize\0001024\0", "empty option name"},
      {"\0\1file\0octet\0a\0001\0A\0002\0", "duplicate option"},
      {"\0\6blksize\0", "without a value"},
      {"\0\6blksize\0001024", "unterminated option value"},
      {"\0\6blksize\0001024\0tsize", "unterminated option name"},
      {"\0\4\0\1\0\0", "4 bytes"},
      {"\0\5\0\1", "unterminated ERROR"},
    }
    for _, case in ipairs(cases) do
      it(string.format("%q -> %s", case[1], case[2]), function()
        fails(case[2], codec.decode(case[1]))
      end)
    end

    it("never echoes packet bytes in reasons", function()
      for _, case in ipairs(cases) do
        local _, reason = codec.decode(case[1])
        assert.falsy(reason:find("octet", 1, true))
        assert.falsy(reason:find("blksize", 1, true))
        assert.falsy(reason:find("1024", 1, true))
        assert.falsy(reason:find("\0", 1, true))
      end
    end)

    it("peeks at opcodes", function()
      assert.equal(3, codec.opcode(codec.data(1, "")))
      assert.equal(0xABCD, codec.opcode("\171\205"))
      fails("too short", codec.opcode("\0"))
    end)

    it("raises on bad blksize arguments", function()
      assert.has_error(function() codec.decode("\0\4\0\1", 7) end)
      assert.has_error(function() codec.decode("\0\4\0\1", 65465) end)
      assert.has_error(function() codec.decode(nil) end)
    end)

    it("decodes thousands of random and mutated packets without raising", function()
      math.randomseed(20240601)
      local seeds = {
        codec.rrq("file.bin", "octet", {{"blksize", 1428}, {"tsize", 0}, {"windowsize", 16}}),
        codec.wrq("a", "netascii", {{"timeout", 5}}),
        codec.data(1, "hello"), codec.ack(9), codec.error(1, "x"),
        codec.oack({{"blksize", 8}}), "\0\5\0\1", "\0\1a\0octet\0\0\0",
      }
      local function random_bytes(n)
        local t = {}
        for i = 1, n do t[i] = string.char(math.random(0, 255)) end
        return table.concat(t)
      end
      local function mutate(s)
        local kind = math.random(1, 5)
        if kind == 1 and #s > 0 then -- flip a byte
          local i = math.random(1, #s)
          return s:sub(1, i - 1) .. string.char(math.random(0, 255)) .. s:sub(i + 1)
        elseif kind == 2 then -- truncate
          return s:sub(1, math.random(0, #s))
        elseif kind == 3 then -- insert NUL or junk
          local i = math.random(0, #s)
          local junk = math.random(2) == 1 and "\0" or random_bytes(math.random(1, 8))
          return s:sub(1, i) .. junk .. s:sub(i + 1)
        elseif kind == 4 then -- extend
          return s .. random_bytes(math.random(0, 600))
        else -- opcode from the small range
          return "\0" .. string.char(math.random(0, 7)) .. s:sub(3)
        end
      end
      local decoded, refused = 0, 0
      for n = 1, 6000 do
        local p
        if n % 3 == 0 then
          p = "\0" .. string.char(math.random(0, 7)) .. random_bytes(math.random(0, 40))
        else
          p = seeds[math.random(#seeds)]
          for _ = 1, math.random(1, 4) do p = mutate(p) end
        end
        local blksize = math.random(8, 1024)
        local ok, d, reason = pcall(codec.decode, p, blksize)
        assert.is_true(ok, d)
        if d then
          decoded = decoded + 1
          assert.is_string(d.op)
        else
          refused = refused + 1
          assert.is_string(reason)
        end
        assert.is_true(pcall(codec.parse_data, p, blksize))
        assert.is_true(pcall(codec.parse_ack, p))
        assert.is_true(pcall(codec.opcode, p))
        assert.is_true(pcall(codec.netascii_decode, p, math.random(2) == 1, math.random(2) == 1))
        -- what decodes re-encodes to an equivalent packet
        if d and (d.op == "RRQ" or d.op == "WRQ") then
          local pairs_ = {}
          for i, name in ipairs(d.order) do pairs_[i] = {name, d.options[name]} end
          local re = (d.op == "RRQ" and codec.rrq or codec.wrq)(d.filename, d.mode, pairs_)
          assert.same(d, codec.decode(re))
        end
      end
      assert.is_true(decoded > 100)
      assert.is_true(refused > 100)
    end)
  end)

  describe("netascii", function()
    local local_text = "foo\nbar\rbaz\n"
    local wire_text = "foo\r\nbar\r\0baz\r\n"

    it("passes FreeBSD's example both ways", function()
      assert.equal(wire_text, codec.netascii_encode(local_text))
      local out, pending = codec.netascii_decode(wire_text, false, true)
      assert.equal(local_text, out)
      assert.is_false(pending)
    end)

    it("maps bare LF and CR, CR LF and edge cases", function()
      assert.equal("\r\n", codec.netascii_encode("\n"))
      assert.equal("\r\0", codec.netascii_encode("\r"))
      assert.equal("\r\0\r\n", codec.netascii_encode("\r\n"))
      assert.equal("", codec.netascii_encode(""))
      assert.equal("plain", codec.netascii_encode("plain"))
      assert.equal(0, codec.netascii_size(""))
      assert.equal(#wire_text, codec.netascii_size(local_text))
      assert.equal("\n", (codec.netascii_decode("\r\n")))
      assert.equal("\r", (codec.netascii_decode("\r\0")))
      assert.equal("\rx", (codec.netascii_decode("\rx")))
      assert.equal("\r\n", (codec.netascii_decode("\r\r\n")))
      assert.equal("\n", (codec.netascii_decode("\n"))) -- bare LF on the wire: left as is
      assert.equal("a\0b", (codec.netascii_decode("a\0b")))
    end)

    it("holds a trailing CR until the next chunk or the end", function()
      local out, pending = codec.netascii_decode("abc\r")
      assert.equal("abc", out)
      assert.is_true(pending)
      out, pending = codec.netascii_decode("\ndef", pending)
      assert.equal("\ndef", out)
      assert.is_false(pending)
      out, pending = codec.netascii_decode("x\r", false, true)
      assert.equal("x\r", out)
      assert.is_false(pending)
      out, pending = codec.netascii_decode("", true)
      assert.equal("", out)
      assert.is_true(pending)
      out, pending = codec.netascii_decode("", true, true)
      assert.equal("\r", out)
      assert.is_false(pending)
      assert.equal("\r", (codec.netascii_decode("\0", true)))
      assert.equal("\rq", (codec.netascii_decode("q", true)))
      out, pending = codec.netascii_decode("\r", true)
      assert.equal("\r", out)
      assert.is_true(pending)
    end)

    local function chunked_decode(wire, size)
      local parts, pending = {}, false
      for i = 1, #wire, size do
        parts[#parts + 1], pending = codec.netascii_decode(wire:sub(i, i + size - 1), pending)
      end
      parts[#parts + 1], pending = codec.netascii_decode("", pending, true)
      assert.is_false(pending)
      return table.concat(parts)
    end

    it("decodes identically in chunks of every size, CR at every edge", function()
      local texts = {
        local_text,
        "\r\r\n\n\r\n\r\r\r\n\n\nx\r",
        ("line one\nline two\r\nbare\rcr\n"):rep(40),
        "\r",
        "\n",
        "",
      }
      for _, text in ipairs(texts) do
        local wire = codec.netascii_encode(text)
        local one_shot = codec.netascii_decode(wire, false, true)
        assert.equal(text, one_shot)
        for size = 1, math.min(#wire, 80) + 1 do
          assert.equal(one_shot, chunked_decode(wire, size))
        end
      end
      -- wire data that is not valid netascii (bare CR, CR at the very end)
      local odd = "a\rb\r\r\0c\r"
      local one_shot = codec.netascii_decode(odd, false, true)
      assert.equal("a\rb\r\rc\r", one_shot)
      for size = 1, #odd do assert.equal(one_shot, chunked_decode(odd, size)) end
    end)

    it("encodes in chunks, and blocks cut from the encoded stream decode back", function()
      local text = ("ab\ncd\r\n\r"):rep(100)
      local wire = codec.netascii_encode(text)
      for size = 1, 17 do
        local parts = {}
        for i = 1, #text, size do parts[#parts + 1] = codec.netascii_encode(text:sub(i, i + size - 1)) end
        assert.equal(wire, table.concat(parts))
      end
      for _, blksize in ipairs({8, 9, 10, 512}) do
        local out, pending, block = {}, false, 0
        local pos = 1
        repeat
          block = block + 1
          local p = codec.data(block, wire, pos, pos + blksize - 1)
          local b, payload = codec.parse_data(p, blksize)
          assert.equal(block, b)
          out[#out + 1], pending = codec.netascii_decode(payload, pending, #payload < blksize)
          pos = pos + blksize
        until #payload < blksize
        assert.equal(text, table.concat(out))
      end
    end)

    it("returns the same string when nothing changes", function()
      local s = ("q"):rep(100000)
      assert.equal(s, codec.netascii_encode(s))
      local out, pending = codec.netascii_decode(s)
      assert.equal(s, out)
      assert.is_false(pending)
    end)
  end)

  describe("optint", function()
    it("parses strict decimals within bounds", function()
      assert.equal(1428, codec.optint("1428", 8, 65464))
      assert.equal(0, codec.optint("0"))
      assert.equal(8, codec.optint("0008"))
      assert.equal(math.maxinteger, codec.optint(tostring(math.maxinteger)))
      fails("range", codec.optint("7", 8, 65464))
      fails("range", codec.optint("65465", 8, 65464))
      fails("range", codec.optint("9223372036854775808"))
      fails("range", codec.optint("99999999999999999999999"))
      fails("empty", codec.optint(""))
      for _, bad in ipairs({"-1", "+1", " 1", "1 ", "0x10", "1e3", "1.0", "1\0"}) do
        fails("decimal", codec.optint(bad))
      end
    end)
  end)

  describe("file fast path (read_data, write_data, check_data)", function()
    local core = require "lnet.core"
    local function tmpwith(content)
      local name = os.tmpname()
      local f = assert(io.open(name, "wb"))
      f:write(content)
      f:close()
      return name
    end

    it("read_data builds DATA packets straight from a file", function()
      local name = tmpwith(("x"):rep(700))
      local f = assert(io.open(name, "rb"))
      local p, n = codec.read_data(f, 1, 512)
      assert.equal(512, n)
      assert.equal(u16(3) .. u16(1) .. ("x"):rep(512), p)
      p, n = codec.read_data(f, 65537, 512) -- block numbers wrap like data()
      assert.equal(188, n)
      assert.equal(u16(3) .. u16(1) .. ("x"):rep(188), p)
      p, n = codec.read_data(f, 3, 512)
      assert.equal(0, n)
      assert.equal(u16(3) .. u16(3), p)
      f:close()
      os.remove(name)
    end)

    it("read_data fills an lnet.buffer and returns it", function()
      local name = tmpwith("abcdefgh")
      local f = assert(io.open(name, "rb"))
      local b = core.buffer(4 + 5)
      local r, n = codec.read_data(f, 7, 5, b)
      assert.equal(b, r)
      assert.equal(5, n)
      assert.equal(u16(3) .. u16(7) .. "abcde", b:sub())
      assert.equal(7, codec.check_data(b, 512))
      assert.same({ 7, "abcde" }, { codec.parse_data(b, 512) })
      assert.has_error(function() codec.read_data(f, 1, 6, b) end) -- 6 + 4 > 9
      f:close()
      os.remove(name)
    end)

    it("read_data reports read errors instead of ending the file early", function()
      local d = io.open("/tmp", "rb") -- a directory: fopen works, reading fails
      local p, msg, err = codec.read_data(d, 1, 512)
      assert.is_nil(p)
      assert.equal(21, err) -- EISDIR
      assert.equal("is a directory", msg) -- lnet's plain lowercase words
      d:close()
      assert.has_error(function() codec.read_data(d, 1, 512) end,
        "bad argument #1 to 'read_data' (attempt to use a closed file)")
      assert.has_error(function() codec.read_data("file", 1, 512) end)
      local f = io.tmpfile()
      assert.has_error(function() codec.read_data(f, 1, 0) end)
      assert.has_error(function() codec.read_data(f, 1, 65465) end)
      f:close()
    end)

    it("check_data is parse_data without the payload copy", function()
      local p = codec.data(9, "hello")
      assert.same({ 9, 5 }, { codec.check_data(p, 512) })
      assert.same({ 9, 0 }, { codec.check_data(codec.data(9, ""), 512) })
      -- the same failures as parse_data
      for _, bad in ipairs { "", "\0\3\0", codec.ack(1), codec.data(1, ("y"):rep(9)) } do
        local a = { codec.check_data(bad, 8) }
        local b = { codec.parse_data(bad, 8) }
        assert.same(b, a)
      end
      local e = { codec.check_data(codec.error(1, "File not found"), 512) }
      assert.same({ nil, "error", 1, "File not found" }, e)
    end)

    it("write_data writes the payload of a packet or a buffer", function()
      local f = io.tmpfile()
      assert.is_true(codec.write_data(f, codec.data(1, "one,")))
      assert.is_true(codec.write_data(f, core.buffer(16, codec.data(2, "two"))))
      assert.is_true(codec.write_data(f, codec.data(3, "")))
      f:seek("set", 0)
      assert.equal("one,two", f:read("a"))
      f:close()
      assert.has_error(function() codec.write_data(io.tmpfile(), codec.ack(1)) end)
      local name = tmpwith("")
      local ro = assert(io.open(name, "rb"))
      local ok, msg, err = codec.write_data(ro, codec.data(1, "x"))
      assert.is_nil(ok)
      assert.equal(9, err) -- EBADF: not open for writing
      assert.equal(core.strerror(err), msg) -- the message every lnet failure uses
      ro:close()
      os.remove(name)
    end)

    it("write_data reports a full disk as nil, message, errno", function()
      local f = assert(io.open("/dev/full", "wb"))
      f:setvbuf("no") -- each write is a write(2): the error comes at once
      local ok, msg, err = codec.write_data(f, codec.data(1, "x"))
      assert.is_nil(ok)
      assert.equal(28, err) -- ENOSPC
      assert.equal("no space left on device", msg)
      f:close()
    end)

    it("parsers accept an lnet.buffer wherever they accept a string", function()
      local b = core.buffer(600)
      b:set(codec.ack(42))
      assert.equal(42, codec.parse_ack(b))
      assert.equal(4, codec.opcode(b))
      b:set(codec.rrq("file", "octet", { { "blksize", 1428 } }))
      local req = codec.decode(b)
      assert.equal("file", req.filename)
      assert.equal("1428", req.options.blksize)
    end)
  end)
end)
