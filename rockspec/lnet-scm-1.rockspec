-- LuaRocks build of lnet from the local tree (no network):
--   luarocks --lua-version=5.4 make rockspec/lnet-scm-1.rockspec
rockspec_format = "3.0"
package = "lnet"
version = "scm-1"
source = {
  url = "git+file://./lnet",
}
description = {
  summary = "Networking for Lua 5.4 with a C core: sockets, Python's struct, TFTP, coroutine loop",
  detailed = [[
BSD/Python-style sockets (TCP, UDP, IPv4, IPv6, Unix), Python-compatible
struct pack/unpack, a TFTP client and server, and a coroutine scheduler over
epoll/poll in which blocking-looking socket calls suspend only their task.]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.4, < 5.5",
}
external_dependencies = {
  -- lnet.tls (lnet/tls.so) links OpenSSL 3: Debian's libssl-dev
  OPENSSL = { header = "openssl/ssl.h", library = "ssl" },
}
build = {
  type = "builtin",
  modules = {
    ["lnet.core"] = {
      sources = {
        "csrc/addr.c", "csrc/buffer.c", "csrc/connect.c", "csrc/core.c", "csrc/error.c",
        "csrc/fs.c", "csrc/io.c", "csrc/linebuf.c", "csrc/poller.c", "csrc/resolver.c",
        "csrc/signal.c", "csrc/socket.c", "csrc/struct.c", "csrc/struct_codec.c", "csrc/tftp.c",
        "csrc/tftp_packet.c", "csrc/wait.c",
        -- csrc/backend/*.c are #included by poller.c, not built on their own
      },
      incdirs = { "csrc" },
      defines = { "_GNU_SOURCE" },
      -- resolver.c: its threads (pthread), and dladdr/dlopen to stay loaded (dl)
      libraries = { "m", "pthread", "dl" },
    },
    ["lnet.tls"] = {
      sources = { "csrc/tls/tls.c", "csrc/tls/context.c", "csrc/tls/peercert.c" },
      incdirs = { "csrc", "$(OPENSSL_INCDIR)" },
      libdirs = { "$(OPENSSL_LIBDIR)" },
      defines = { "_GNU_SOURCE" },
      libraries = { "ssl", "crypto" },
    },
    ["lnet"] = "lua/lnet/init.lua",
    ["lnet.loop"] = "lua/lnet/loop.lua",
    ["lnet.struct"] = "lua/lnet/struct.lua",
    ["lnet.tftp"] = "lua/lnet/tftp.lua",
    ["lnet.tls.connect"] = "lua/lnet/tls/connect.lua",
    ["lnet.tftp.path"] = "lua/lnet/tftp/path.lua",
    ["lnet.tftp.server"] = "lua/lnet/tftp/server.lua",
    ["lnet.tftp.transfer"] = "lua/lnet/tftp/transfer.lua",
    ["lnet.tftp.util"] = "lua/lnet/tftp/util.lua",
    ["lnet.tftp_codec"] = "lua/lnet/tftp_codec.lua",
  },
}
