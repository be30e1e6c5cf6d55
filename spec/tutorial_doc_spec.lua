-- docs/tutorial.md must not drift from the examples: every code block that
-- claims to be a file (a fence opened with "```lua file=examples/X.lua") is
-- that file, byte for byte, and comes with the command that runs it.
--
-- After changing an example, copy it into the doc with
--     UPDATE_TUTORIAL=1 make test SPECS=spec/tutorial_doc_spec.lua
-- (it rewrites those blocks from the files, then checks), and reread the
-- prose around the block.
local ROOT = os.getenv("LNET_ROOT") or "."

local function read(path)
  local f = io.open(ROOT .. "/" .. path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- The fenced blocks of a Markdown text: { info = "lua file=...", body = "...", line = n }.
local function blocks(text)
  local out, cur, n = {}, nil, 0
  for line in (text .. (text:sub(-1) == "\n" and "" or "\n")):gmatch("(.-)\n") do
    n = n + 1
    if cur then
      if line:match("^```%s*$") then
        out[#out + 1] = cur
        cur = nil
      else
        cur.lines[#cur.lines + 1] = line
      end
    else
      local info = line:match("^```(.*)$")
      if info then cur = { info = info, lines = {}, line = n } end
    end
  end
  assert(cur == nil, "a code block is not closed (opened on line " .. (cur and cur.line or 0) .. ")")
  for _, b in ipairs(out) do b.body = table.concat(b.lines, "\n") .. (#b.lines > 0 and "\n" or "") end
  return out
end

-- Rewrite every `lua file=` block of the doc from its file.
local function update(path)
  local text = read(path)
  if not text then return end
  local out, skipping = {}, false
  for line in text:gmatch("([^\n]*)\n") do
    if skipping then
      if line:match("^```%s*$") then
        out[#out + 1] = line
        skipping = false
      end
    else
      out[#out + 1] = line
      local file = line:match("^```lua file=(%S+)")
      local body = file and read(file)
      if body then
        out[#out + 1] = body:sub(-1) == "\n" and body:sub(1, -2) or body
        skipping = true
      end
    end
  end
  local f = assert(io.open(ROOT .. "/" .. path, "wb"))
  f:write(table.concat(out, "\n"), "\n")
  f:close()
end

if os.getenv("UPDATE_TUTORIAL") then update("docs/tutorial.md") end

describe("docs/tutorial.md", function()
  local doc = read("docs/tutorial.md")

  it("exists", function()
    assert.is_string(doc)
  end)

  local files = {}
  for _, b in ipairs(doc and blocks(doc) or {}) do
    local path = b.info:match("file=(%S+)")
    if path then
      files[path] = true
      it(("line %d: the block is %s, exactly"):format(b.line, path), function()
        local actual = read(path)
        assert(actual, path .. " does not exist")
        if actual ~= b.body then
          -- Point at the first differing line, for a readable failure.
          local i, a, d = 1, {}, {}
          for l in actual:gmatch("([^\n]*)\n") do a[#a + 1] = l end
          for l in b.body:gmatch("([^\n]*)\n") do d[#d + 1] = l end
          while a[i] == d[i] and i <= math.max(#a, #d) do i = i + 1 end
          error(("docs/tutorial.md block at line %d differs from %s at its line %d:\n  file: %s\n  doc:  %s\n"
            .. "(copy the files into the doc: UPDATE_TUTORIAL=1 make test SPECS=spec/tutorial_doc_spec.lua)")
            :format(b.line, path, i, tostring(a[i]), tostring(d[i])))
        end
      end)

      it(("shows how to run %s"):format(path), function()
        assert.truthy(doc:find("lua5.4 " .. path, 1, true), "no `lua5.4 " .. path .. "` command in the doc")
      end)
    end
  end

  it("includes the tutorial's example programs", function()
    for _, path in ipairs { "examples/udp_send.lua", "examples/udp_send_recv.lua",
        "examples/tftp_download.lua", "examples/tcp_server_recv.lua", "examples/tcp_qq_server.lua",
        "examples/tcp_qq_client.lua", "examples/udp_chat.lua", "examples/tcp_chat_server.lua",
        "examples/tcp_chat_client.lua" } do
      assert.truthy(files[path], path .. " is not shown as a `lua file=` block")
    end
  end)

  it("has the tutorial's chapters and the GB2312 note", function()
    local at = 1
    for _, heading in ipairs { "IP addresses and ports", "Protocols and layers", "TCP and UDP", "Sockets",
        "network debugging assistant", "UDP programming", "TFTP", "lnet.struct", "TCP programming",
        "QQ", "group chat" } do
      local s, e = doc:find("\n##[^\n]*" .. heading)
      assert(s, "no heading with " .. heading)
      assert(s > at, heading .. " is out of order")
      at = e
    end
    assert.truthy(doc:find("GB2312", 1, true) and doc:find("iconv", 1, true))
  end)
end)
