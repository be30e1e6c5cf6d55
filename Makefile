# lnet - Lua 5.4 networking with a C core.
# `make test` installs what it needs, builds, and runs every spec under Lua 5.4.

LUA        ?= lua5.4
BUSTED     ?= $(LUA) /usr/bin/busted
LUAROCKS   ?= luarocks --lua-version=5.4
CC         ?= gcc
PKG_LUA    := $(shell pkg-config --cflags lua5.4 2>/dev/null || echo -I/usr/include/lua5.4)
CFLAGS_STD := -std=c11 -D_GNU_SOURCE -fPIC -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
OPT        ?= -O2
CSRC       := $(sort $(wildcard csrc/*.c))
CORELIBS   := -lpthread -ldl -lm
CHDR       := $(wildcard csrc/*.h) $(wildcard csrc/backend/*.c)
# lnet.tls: its own module over OpenSSL, so the core builds without it; where
# OpenSSL is missing, a stub whose require says so in one line.
TLSSRC     := csrc/tls/tls.c csrc/tls/context.c csrc/tls/peercert.c
TLSHDR     := csrc/tls/tls.h csrc/lnet.h csrc/lnet_api.h
HAVE_SSL   := $(shell pkg-config --exists openssl 2>/dev/null && echo yes)
ifeq ($(HAVE_SSL),yes)
TLSIN      := $(TLSSRC)
TLSFLAGS   := $(shell pkg-config --cflags openssl)
TLSLIBS    := $(shell pkg-config --libs openssl)
else
TLSIN      := csrc/tls/stub.c
endif

BUILD      := build
ASAN_BUILD := build-asan
CORE       := $(BUILD)/lnet/core.so
ASAN_CORE  := $(ASAN_BUILD)/lnet/core.so
TLS        := $(BUILD)/lnet/tls.so
ASAN_TLS   := $(ASAN_BUILD)/lnet/tls.so
ASANFLAGS  := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all

# Paths that put the source tree's Lua files and the built core first.
LPATH      := $(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;;
RUNENV      = LUA_PATH="$(LPATH)" LUA_CPATH="$(CURDIR)/$(1)/?.so;;" LNET_ROOT="$(CURDIR)"

ASAN_RT    := $(shell $(CC) -print-file-name=libasan.so 2>/dev/null)
ASAN_ENV   := LD_PRELOAD="$(ASAN_RT)" \
              ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:detect_stack_use_after_return=0 \
              UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1

SPECS      ?= spec
FUZZTIME   ?= 30

.PHONY: all deps build test test-asan lint format repl demo bench install clean fuzz check-5.4

all: build

deps:
	@sh scripts/deps.sh

build: $(CORE) $(TLS)

$(CORE): $(CSRC) $(CHDR) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_STD) $(OPT) $(PKG_LUA) -shared -o $@ $(CSRC) $(CORELIBS) $(LDFLAGS)

$(ASAN_CORE): $(CSRC) $(CHDR) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_STD) $(ASANFLAGS) $(PKG_LUA) -shared -o $@ $(CSRC) $(CORELIBS)

$(TLS): $(TLSIN) $(TLSHDR) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_STD) $(OPT) $(PKG_LUA) -Icsrc $(TLSFLAGS) -shared -o $@ $(TLSIN) $(TLSLIBS) $(LDFLAGS)

$(ASAN_TLS): $(TLSIN) $(TLSHDR) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_STD) $(ASANFLAGS) $(PKG_LUA) -Icsrc $(TLSFLAGS) -shared -o $@ $(TLSIN) $(TLSLIBS)

test: deps build
	@$(call RUNENV,$(BUILD)) sh scripts/run-specs.sh $(BUSTED) -- $(SPECS)

test-asan: deps $(ASAN_CORE) $(ASAN_TLS)
	@$(call RUNENV,$(ASAN_BUILD)) $(ASAN_ENV) LNET_ASAN=1 sh scripts/run-specs.sh $(BUSTED) -- $(SPECS)

lint:
	@echo "lint: clang-format"; clang-format --dry-run --Werror $(CSRC) $(CHDR) csrc/tls/*.[ch] fuzz/*.c bench/*.c
	@echo "lint: cppcheck"; cppcheck -q --error-exitcode=1 --enable=warning,portability,performance \
	  --std=c11 --inline-suppr -D_GNU_SOURCE --suppress=missingIncludeSystem --suppress=missingInclude csrc
	@echo "lint: luacheck"; luacheck -q lua spec examples bench

format:
	clang-format -i $(CSRC) $(CHDR) csrc/tls/*.[ch] fuzz/*.c bench/*.c

repl: build
	@$(call RUNENV,$(BUILD)) $(LUA) -e 'lnet = require "lnet"' -i

demo: deps build
	@$(call RUNENV,$(BUILD)) $(LUA) examples/demo.lua

bench: deps build
	@$(call RUNENV,$(BUILD)) sh bench/run.sh

fuzz: deps
	@$(call RUNENV,$(BUILD)) FUZZTIME=$(FUZZTIME) sh scripts/fuzz.sh

install: build
	$(LUAROCKS) make rockspec/lnet-scm-1.rockspec

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
