-- UDP 发送数据 (UDP: send data).
-- Read one line from the keyboard and send it, as one UDP datagram, to
-- host:port.  Nothing is connected first: UDP just sends.
--
--     lua5.4 examples/udp_send.lua [--host 127.0.0.1] [--port 8080]
--
-- To see it arrive, start a receiver first, e.g. in another terminal:
--     lua5.4 examples/netassist.lua --udp --listen 8080
package.path = arg[0]:gsub("[^/]*$", "") .. "?.lua;" .. package.path
local args = require "lib.args"
local lnet = require "lnet"

local opt = args.parse{
  usage = "lua5.4 examples/udp_send.lua [--host H] [--port P]",
  about = "Read one line from the keyboard and send it in one UDP datagram.",
  { "host", "127.0.0.1", "receiver's address" },
  { "port", 8080, "receiver's port" },
}

args.main(function()
  -- 1. Create a UDP socket (Python: socket(AF_INET, SOCK_DGRAM)).
  --    `<close>` closes it for us when this function ends, however it ends.
  local s <close> = lnet.udp()

  -- 2. Read what to send.  io.read gives nil at the end of input (Ctrl-D).
  io.write("Type a message: ")
  io.flush()
  local data = io.read("l")
  if data == nil then
    print("\nNo input: nothing sent.")
    return
  end

  -- 3. Send it to the receiver's address.  A Lua string is already bytes:
  --    what you typed goes out as it is (UTF-8 from a UTF-8 terminal).
  local n, err = s:sendto(data, opt.host, opt.port)
  if not n then args.fail("Could not send to " .. opt.host .. ":" .. opt.port .. ": " .. err) end
  print(("Sent %d bytes to %s:%d."):format(n, opt.host, opt.port))
end)
