-- https_get.lua: a minimal HTTP/1.1 GET over lnet.tls.
--
--   lua5.4 examples/https_get.lua https://example.org/ [--cafile ca.pem] [--timeout 10]
--
-- Connects (verifying the server's certificate and name: against the
-- system's CAs, or --cafile), sends one GET, and prints the status line, the
-- headers and the length of the body.  The body is read as HTTP/1.1 says:
-- Content-Length bytes, or chunks (Transfer-Encoding: chunked), or until the
-- server closes.
package.path = arg[0]:gsub("[^/]*$", "") .. "?.lua;" .. package.path
local args = require "lib.args"
local tls = require "lnet.tls"

local opt = args.parse{
  usage = "lua5.4 examples/https_get.lua URL [--cafile F] [--timeout S]",
  about = "GET an https:// URL; print the status line, the headers and the body's length.",
  { "cafile", "", "trust the CAs in this file (default: the system's)", "FILE" },
  { "timeout", 10, "seconds for each step" },
}

-- "https://host[:port][/path]" -> host, port, path ("[::1]" for IPv6).
local function parse(url)
  local rest = url:match("^https://(.+)$")
  if not rest then return nil end
  local hostport, path = rest:match("^([^/]*)(.*)$")
  local host, port = hostport:match("^%[(.+)%]:?(%d*)$")
  if not host then host, port = hostport:match("^([^:]+):?(%d*)$") end
  if not host then return nil end
  return host, tonumber(port) or 443, path ~= "" and path or "/"
end

-- Read the body as the headers say; returns its length or nil, error.
local function body(s, headers)
  local length = tonumber(headers["content-length"])
  if length then
    local data, err = s:receive(length)
    return data and #data, err
  end
  if (headers["transfer-encoding"] or ""):lower():find("chunked", 1, true) then
    local total = 0
    while true do
      local line, err = s:receive("l")
      if not line then return nil, err end
      local size = tonumber(line:match("^%x+"), 16)
      if not size then return nil, "bad chunk size: " .. line end
      if size == 0 then return total end
      local data, e = s:receive(size)
      if not data then return nil, e end
      total = total + size
      s:receive("l") -- the CR LF after the chunk
    end
  end
  local data, err = s:receive("a") -- until the server closes
  return data and #data, err
end

args.main(function()
  local url = opt[1] or args.fail("give a URL, e.g. https://example.org/ (see --help)")
  local host, port, path = parse(url)
  if not host then args.fail("not an https:// URL: " .. url) end
  local s, err = tls.connect(host, port, { timeout = opt.timeout,
    cafile = opt.cafile ~= "" and opt.cafile or nil })
  if not s then args.fail(("cannot connect to %s:%d: %s"):format(host, port, err)) end
  local hosthdr = host:find(":", 1, true) and "[" .. host .. "]" or host
  assert(s:sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: lnet-https_get\r\n"
    .. "Connection: close\r\n\r\n"):format(path, hosthdr)))
  local status = s:receive("l")
  if not status then args.fail("no answer from the server") end
  print(status)
  local headers = {}
  while true do
    local line, e = s:receive("l")
    if not line then args.fail("the headers were cut short: " .. tostring(e)) end
    if line == "" then break end
    print(line)
    local k, v = line:match("^([^:]+):%s*(.*)$")
    if k then headers[k:lower()] = v end
  end
  local n, e = body(s, headers)
  if not n then args.fail("the body was cut short: " .. tostring(e)) end
  print(("(body: %d bytes, %s, %s)"):format(n, s:version(), (s:cipher())))
  s:close()
end)
