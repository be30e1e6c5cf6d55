-- tftp_download.lua: the tutorial's TFTP downloader, on raw lnet sockets and
-- lnet.struct, but correct: it follows the server's TID, ACKs every block
-- (the last one too), retries on timeout, and writes a fresh file.
--
--   lua5.4 examples/tftp_download.lua HOST FILENAME [PORT]
package.path = arg[0]:gsub("[^/]*$", "") .. "?.lua;" .. package.path
require "lib.args" -- finds this tree's lnet when run from a clone (examples/lib/args.lua)
local lnet = require "lnet"
local struct = require "lnet.struct"

if arg[1] == "-h" or arg[1] == "--help" or not arg[2] then
  print("usage: lua5.4 examples/tftp_download.lua HOST FILENAME [PORT]\n"
    .. "Downloads FILENAME from the TFTP server HOST (port 69 by default) into the current directory.")
  os.exit(arg[2] and 0 or 1)
end
local server_ip, filename, port = arg[1], arg[2], tonumber(arg[3] or "69")

-- Read request: opcode 1, the file name, a zero byte, the mode "octet", a zero byte.
local request = struct.pack("!H" .. #filename .. "sb5sb", 1, filename, 0, "octet", 0)

local s = assert(lnet.udp())
s:settimeout(2) -- never wait forever: UDP packets get lost
-- A fresh file ("wb", not the tutorial's "ab", which kept stale bytes), under
-- a temporary name until the download is complete.
local out = filename:match("([^/]+)$")
local tmp = out .. ".part"
local f = assert(io.open(tmp, "wb"))

local function fail(msg)
  f:close()
  os.remove(tmp)
  io.stderr:write(msg, "\n")
  os.exit(1)
end

local expected = 1 -- the next block number we want
local last_sent, tid_port = request, nil
s:sendto(request, server_ip, port)
local tries = 0
while true do
  local data, host, from_port = s:recvfrom(516 + 4)
  if not data then
    -- timeout: resend our last packet (the request or the last ACK), a few times
    tries = tries + 1
    if tries > 5 then fail("timeout") end
    s:sendto(last_sent, server_ip, tid_port or port)
  elseif tid_port and from_port ~= tid_port then
    -- another port (not the server's TID): tell it ERROR 5, ignore the packet
    s:sendto(struct.pack("!HH", 5, 5) .. "unknown transfer ID\0", host, from_port)
  elseif #data >= 4 then
    local opcode, num = struct.unpack("!HH", data:sub(1, 4))
    if opcode == 5 then fail("server error " .. num .. ": " .. data:sub(5):gsub("%z.*", "")) end
    if opcode == 3 then
      tid_port = tid_port or from_port -- lock on to the server's TID (its new port)
      tries = 0
      if num == expected % 65536 then  -- the block we want (numbers wrap after 65535)
        f:write(data:sub(5))
        expected = expected + 1
      end
      -- ACK what we have (a repeated block is ACKed again: our ACK was lost)
      last_sent = struct.pack("!HH", 4, num)
      s:sendto(last_sent, server_ip, tid_port)
      -- a block shorter than 512 bytes is the last one (its ACK has just gone out)
      if num == (expected - 1) % 65536 and #data < 516 then break end
    end
  end
end
f:close()
assert(os.rename(tmp, out))
print(("downloaded %s (%d blocks)"):format(out, expected - 1))
