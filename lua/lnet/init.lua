--- lnet: networking for Lua 5.4 with a C core.
-- BSD/Python-style sockets (TCP, UDP, IPv4, IPv6, Unix), Python's `struct`,
-- TFTP, and a coroutine scheduler (`lnet.loop`).
--
--     local lnet = require "lnet"
--     local s = lnet.udp()
--     s:sendto("hello", "127.0.0.1", 8080)
--
-- Everything in the C core (`lnet.core`) is re-exported here: `socket`,
-- `tcp`, `udp`, `socketpair`, `buffer`, `getaddrinfo`, `gethostname`,
-- `gethostbyname`, `inet_pton`, `inet_ntop`, `select`, `gettime`, `sleep`,
-- `strerror`, `isatty` and the constants (`AF_INET`, `SOCK_STREAM`, `SOL_SOCKET`, ...).
-- Submodules load on first use: `lnet.struct`, `lnet.loop`, `lnet.tftp`.
-- @module lnet

local core = require "lnet.core"

local M = {}
for k, v in pairs(core) do
  if type(k) == "string" and not k:match("^_") and k ~= "resume"
      and k ~= "WAIT" and k ~= "READ" and k ~= "WRITE" and type(v) ~= "table" then
    M[k] = v
  end
end
M._VERSION = core._VERSION

local submodules = { struct = true, loop = true, tftp = true }

return setmetatable(M, {
  __index = function(t, k)
    if submodules[k] then
      local mod = require("lnet." .. k)
      rawset(t, k, mod)
      return mod
    end
    return nil
  end,
  __tostring = function() return "lnet " .. core._VERSION end,
})
