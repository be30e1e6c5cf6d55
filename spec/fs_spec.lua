-- lnet.core.fs: files confined to a root, for servers.
local core = require "lnet.core"
local proc = require "spec.support.proc"
local fs = core.fs

-- fs fails with lnet's nil, message, errno; the message is lnet's for that errno.
local function fails(errno, f, msg, err, what)
  assert.is_nil(f, what)
  assert.equal(errno, err, what)
  assert.equal(core.strerror(errno), msg, what)
end

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

  it("exports the errnos it returns, by name", function()
    assert.same({ 2, 13, 40, 20, 21, 17, 28, 122 }, -- Linux's numbers
      { fs.ENOENT, fs.EACCES, fs.ELOOP, fs.ENOTDIR, fs.EISDIR, fs.EEXIST, fs.ENOSPC, fs.EDQUOT })
  end)

  it("says ENOENT for a missing file or a missing directory on the way", function()
    local f, msg, err = fs.open_read(root, "nope.txt")
    fails(fs.ENOENT, f, msg, err)
    assert.equal("no such file or directory", msg)
    fails(fs.ENOENT, fs.open_read(root, "nodir/x.txt"))
  end)

  -- refused names: EACCES, before anything is opened below the root
  for _, name in ipairs { "../outside/s.txt", "sub/../../outside/s.txt", "..", ".", "/etc/passwd",
    "//etc/passwd", "sub//b.txt", "./a.txt", "..\\..\\x", "a\1b", "a.txt\0.png", "sub/", "" } do
    it("refuses the name " .. ("%q"):format(name) .. " with EACCES", function()
      local f, msg, err = fs.open_read(root, name)
      fails(fs.EACCES, f, msg, err)
      assert.equal("permission denied", msg)
    end)
  end

  it("refuses a symlink anywhere in the name with ELOOP, even one staying inside", function()
    for _, name in ipairs { "out-link", "in-link", "out-dir/s.txt", "out-dir/nope" } do
      local f, msg, err = fs.open_read(root, name)
      fails(fs.ELOOP, f, msg, err, name)
      assert.equal("too many levels of symbolic links", msg)
    end
  end)

  it("refuses what is not a regular file: EISDIR, ENOTDIR, EACCES for a FIFO", function()
    local f, msg, err = fs.open_read(root, "sub")
    fails(fs.EISDIR, f, msg, err)
    assert.equal("is a directory", msg)
    f, msg, err = fs.open_read(root, "a.txt/x") -- a file where a directory is wanted
    fails(fs.ENOTDIR, f, msg, err)
    assert.equal("not a directory", msg)
    fails(fs.EACCES, fs.open_read(root, "fifo"))
  end)

  it("never lets a read escape through a symlinked directory", function()
    fails(fs.ELOOP, fs.open_read(root, "out-dir/s.txt"))
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
    local g, msg, err = fs.open_write(root, "a.txt", "create")
    fails(fs.EEXIST, g, msg, err)
    assert.equal("file exists", msg)
    assert.equal("new", readfile(root .. "/a.txt"))
  end)

  it("create loses a race to a file that appears meanwhile", function()
    local f, up = assert(fs.open_write(root, "race.txt", "create"))
    f:close()
    sh("printf first > " .. root .. "/race.txt")
    fails(fs.EEXIST, up:commit())
    assert.equal("first", readfile(root .. "/race.txt"))
    assert.same({}, (function()
      local left = {}
      for _, n in ipairs(listdir(root)) do if n:find("^%.lnet%-upload") then left[#left + 1] = n end end
      return left
    end)())
  end)

  it("refuses uploads outside the root, over links, directories and FIFOs", function()
    for name, errno in pairs { ["../outside/x"] = fs.EACCES, ["/tmp/x"] = fs.EACCES,
      ["a\0b"] = fs.EACCES, ["out-dir/x"] = fs.ELOOP, ["out-link"] = fs.ELOOP,
      ["in-link"] = fs.ELOOP, ["sub"] = fs.EISDIR, ["fifo"] = fs.EACCES,
      ["nodir/x"] = fs.ENOENT, ["a.txt/x"] = fs.ENOTDIR } do
      for _, policy in ipairs { "overwrite", "create" } do
        local f, msg, err = fs.open_write(root, name, policy)
        fails(errno, f, msg, err, policy .. " " .. name)
      end
    end
    assert.is_nil(readfile(outside .. "/x"))
    assert.equal("secret", readfile(outside .. "/s.txt"))
  end)

  it("reports free space and canonical directories", function()
    assert.is_true(math.type(fs.free_space(root)) == "integer" and fs.free_space(root) > 0)
    assert.equal(root, fs.realdir(root .. "/sub/.."))
    fails(fs.ENOTDIR, fs.realdir(root .. "/a.txt"))
    fails(fs.ENOENT, fs.realdir(root .. "/missing"))
    fails(fs.ENOENT, fs.free_space(root .. "/missing"))
  end)
end)
