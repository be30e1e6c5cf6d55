--- examples/lib/message.lua: one chat message from a TCP peer that sends each
-- message with one send() and no end-of-message mark: the tutorial's Python QQ
-- programs, NetAssist and netassist.lua do so.
--
--     local message = require "lib.message"
--     local text, err = message.receive(sock)   --> text, or nil, "closed" / err
--
-- TCP carries a stream of bytes, not messages: one recv returns whatever has
-- arrived, which may be part of a message, or two.  The QQ chat takes turns,
-- so only one message is on its way at any time; then "what one recv(1024)
-- returns" is that message, as in the tutorial.  Two things make it sturdier
-- here: the bytes that have already arrived behind the first 1024 (a long
-- message) are taken too, and a final "\r\n" or "\n" (which nc and some tools
-- add) is removed.
local lnet = require "lnet"

local M = {}

--- Receive one message (see above).
-- @param sock a connected lnet TCP socket
-- @treturn[1] string the message, without a final end of line
-- @return[2] nil, and "closed" when the peer hung up, or the error of recv
function M.receive(sock)
  local data, err = sock:recv(1024)
  if not data then return nil, err end
  if data == "" then return nil, "closed" end
  local parts = { data }
  while #parts < 1024 and lnet.select({ sock }, nil, 0)[1] do
    local more = sock:recv(1024)
    if not more or more == "" then break end -- the end shows at the next receive
    parts[#parts + 1] = more
  end
  return (table.concat(parts):gsub("\r?\n$", ""))
end

return M
