-- lnet.core.fs: files confined to a root, for servers.
local core = require "lnet.core"
local proc = require "spec.support.proc"
local fs = core.fs

local function sh(cmd)
  assert(os.execute(cmd))
end

local function readfile(p)
  local f = io.open(p, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function listdir(d)
  local out = {}
  local p = io.popen("ls -A " .. proc.quote(d))
  for l in p:lines() do out[#out + 1] = l end
  p:close()
  table.sort(out)
  return out
end

describe("lnet.core.fs", function()
  local tmp, root, outside

  before_each(function()
    local p = io.popen("mktemp -d")
    tmp = p:read("l")
    p:close()
    root, outside = tmp .. "/root", tmp .. "/outside"
    sh(("mkdir -p %s/sub %s && printf hello > %s/a.txt && printf deep > %s/sub/b.txt"
      .. " && printf secret > %s/s.txt && ln -s %s/s.txt %s/out-link"
      .. " && ln -s %s %s/out-dir && ln -s a.txt %s/in-link && mkfifo %s/fifo")
      :format(root, outside, root, root, outside, outside, root, outside, root, root, root))
  end)

  after_each(function()
    os.execute("rm -rf " .. proc.quote(tmp))
  end)

  it("opens regular files inside the root", function()
    local f = assert(fs.open_read(root, "a.txt"))
    assert.equal("hello", f:read("a"))
    f:close()
    f = assert(fs.open_read(root, "sub/b.txt"))
    assert.equal("deep", f:read("a"))
    assert.equal("file", io.type(f))
    f:close()
    assert.equal("closed file", io.type(f))
  end)

  it("says file not found for a missing file", function()
    local f, code, msg = fs.open_read(root, "nope.txt")
    assert.is_nil(f)
    assert.equal(1, code)
    assert.equal("file not found", msg)
  end)

  for _, name in ipairs { "../outside/s.txt", "sub/../../outside/s.txt", "..", ".", "/etc/passwd",
    "//etc/passwd", "sub//b.txt", "./a.txt", "..\\..\\x", "a\1b", "a.txt\0.png", "sub/",
    "sub", "out-link", "out-dir/s.txt", "in-link", "fifo", "" } do
    it("refuses " .. ("%q"):format(name) .. " with an access violation", function()
      local f, code = fs.open_read(root, name)
      assert.is_nil(f)
      assert.equal(2, code)
    end)
  end

  it("never lets a read escape through a symlinked directory", function()
    local f, code = fs.open_read(root, "out-dir/s.txt")
    assert.is_nil(f)
    assert.equal(2, code)
  end)

  it("uploads through a temporary file renamed on commit", function()
    local f, up = assert(fs.open_write(root, "new.bin", "create"))
    assert.matches("^lnet.fs.upload%(.lnet%-upload%-%x+ %-> new.bin%)$", tostring(up))
    f:write("payload")
    f:close()
    assert.is_nil(readfile(root .. "/new.bin"))
    assert.is_true(up:commit())
    assert.equal("payload", readfile(root .. "/new.bin"))
    assert.same({ "a.txt", "fifo", "in-link", "new.bin", "out-dir", "out-link", "sub" }, listdir(root))
  end)

  it("leaves the old file untouched when an upload is aborted or collected", function()
    local f, up = assert(fs.open_write(root, "a.txt", "overwrite"))
    f:write("half")
    f:close()
    up:abort()
    assert.equal("hello", readfile(root .. "/a.txt"))
    do
      local g = assert(fs.open_write(root, "sub/b.txt", "overwrite")) -- the upload is dropped
      g:close()
    end
    collectgarbage()
    collectgarbage()
    assert.equal("deep", readfile(root .. "/sub/b.txt"))
    assert.same({ "b.txt" }, listdir(root .. "/sub"))
  end)

  it("replaces with overwrite, refuses with create", function()
    local f, up = assert(fs.open_write(root, "a.txt", "overwrite"))
    f:write("new")
    f:close()
    assert.is_true(up:commit())
    assert.equal("new", readfile(root .. "/a.txt"))
    local g, code, msg = fs.open_write(root, "a.txt", "create")
    assert.is_nil(g)
    assert.equal(6, code)
    assert.equal("file already exists", msg)
  end)

  it("create loses a race to a file that appears meanwhile", function()
    local f, up = assert(fs.open_write(root, "race.txt", "create"))
    f:close()
    sh("printf first > " .. root .. "/race.txt")
    local ok, code = up:commit()
    assert.is_nil(ok)
    assert.equal(6, code)
    assert.equal("first", readfile(root .. "/race.txt"))
    assert.same({}, (function()
      local left = {}
      for _, n in ipairs(listdir(root)) do if n:find("^%.lnet%-upload") then left[#left + 1] = n end end
      return left
    end)())
  end)

  it("refuses uploads outside the root, over links, directories and FIFOs", function()
    for _, name in ipairs { "../outside/x", "out-dir/x", "out-link", "in-link", "sub", "fifo",
      "/tmp/x", "nodir/x" } do
      local f, code = fs.open_write(root, name, "overwrite")
      assert.is_nil(f, name)
      assert.equal(2, code, name)
    end
    assert.is_nil(readfile(outside .. "/x"))
    assert.equal("secret", readfile(outside .. "/s.txt"))
  end)

  it("reports free space and canonical directories", function()
    assert.is_true(math.type(fs.free_space(root)) == "integer" and fs.free_space(root) > 0)
    assert.equal(root, fs.realdir(root .. "/sub/.."))
    assert.is_nil(fs.realdir(root .. "/a.txt"))
    assert.is_nil(fs.realdir(root .. "/missing"))
  end)
end)
