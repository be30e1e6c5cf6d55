-- UDP 先发送数据再接收数据 (UDP: send, then receive the reply).
-- Bind a fixed local port, send one typed line to host:port, then wait for
-- one datagram back and print who sent it and what it says.
--
--     lua5.4 examples/udp_send_recv.lua [--host 127.0.0.1] [--port 8080]
--                                       [--local-port 8788] [--timeout 30]
--
-- Try it against the assistant, which answers each line you type there:
--     lua5.4 examples/netassist.lua --udp --listen 8080
package.path = arg[0]:gsub("[^/]*$", "") .. "?.lua;" .. package.path
local args = require "lib.args"
local lnet = require "lnet"

local opt = args.parse{
  usage = "lua5.4 examples/udp_send_recv.lua [--host H] [--port P] [--local-port L] [--timeout S]",
  about = "Send one typed line from local port L to H:P, then print the reply.",
  { "host", "127.0.0.1", "receiver's address" },
  { "port", 8080, "receiver's port" },
  { "local-port", 8788, "our own port, where the reply comes back" },
  { "timeout", 30, "seconds to wait for the reply" },
}

args.main(function()
  -- 1. Create a UDP socket; `<close>` closes it when we are done.
  local s <close> = lnet.udp()

  -- 2. Bind it to a fixed local port.  Without bind the system picks a new
  --    random port each run, and the other side would not know where to
  --    answer.  "" means every local address (Python: s.bind(('', 8788))).
  local ok, err = s:bind("", opt.local_port)
  if not ok then args.fail(("Cannot use local port %d: %s"):format(opt.local_port, err)) end

  -- 3. Read a line and send it.
  io.write("Type a message: ")
  io.flush()
  local data = io.read("l")
  if data == nil then
    print("\nNo input: nothing sent.")
    return
  end
  local n
  n, err = s:sendto(data, opt.host, opt.port)
  if not n then args.fail(("Could not send to %s:%d: %s"):format(opt.host, opt.port, err)) end
  print(("Sent %d bytes to %s:%d from port %d; waiting for a reply..."):format(
    n, opt.host, opt.port, opt.local_port))

  -- 4. Wait for one datagram (at most 1024 bytes, as in the tutorial).
  --    UDP gives no guarantee that an answer ever comes, so do not wait
  --    forever: after the timeout recvfrom returns nil, "timeout".
  s:settimeout(opt.timeout)
  local reply, host, port = s:recvfrom(1024)
  if not reply then
    if host == "timeout" then
      args.fail(("No reply within %g seconds (is anything answering on %s:%d?)"):format(
        opt.timeout, opt.host, opt.port))
    end
    args.fail("Receive failed: " .. host)
  end
  print(("Received from %s:%d: %s"):format(host, port, reply))
end)
