--- TFTP codec (RFC 1350, 2347, 2348, 2349, 7440), implemented in C (csrc/tftp.c).
--
-- This module is `require("lnet.core").tftp` itself: no Lua runs per packet.
--
-- Conventions:
--
-- * A malformed packet or an unencodable value (it may come from the network or
--   from a user) gives `nil, reason`; reasons are fixed English phrases that never
--   echo packet bytes, so they are safe to log.
-- * Wrong argument *types* (and out-of-range block sizes, negative block numbers)
--   raise errors that name the argument.
-- * Block numbers are 16-bit on the wire; encoders take any non-negative integer
--   modulo 65536, so a running counter may be passed (rollover wraps to 0).
-- * Options (`opts`) are either an array of `{name, value}` pairs, sent in array
--   order, or a `{name = value}` map, sent sorted by name. Values are strings or
--   integers. Names are compared case-insensitively: a duplicate gives
--   `nil, "duplicate option"`. Empty values are allowed (RFC 2090 `multicast`).
--
-- @module lnet.tftp_codec

--- Opcodes: `RRQ=1`, `WRQ=2`, `DATA=3`, `ACK=4`, `ERROR=5`, `OACK=6`;
-- `opnames[opcode]` is the name ("RRQ" ...).
-- @table opcodes

--- Error codes: `ERR_UNDEFINED=0`, `ERR_NOT_FOUND=1`, `ERR_ACCESS=2`, `ERR_DISK_FULL=3`,
-- `ERR_ILLEGAL=4`, `ERR_UNKNOWN_TID=5`, `ERR_EXISTS=6`, `ERR_NO_USER=7`, `ERR_OPTION=8`;
-- `messages[code]` is the default message (index 0..8).  Opcodes and error
-- codes are defined once, in csrc/tftp.h; Lua code uses these names, never
-- the numbers.
-- @table errors

--- Limits: `MAX_REQUEST=512` (RFC 2347), `BLKSIZE=512` (default), `BLKSIZE_MIN=8`,
-- `BLKSIZE_MAX=65464`, `TIMEOUT_MIN=1`, `TIMEOUT_MAX=255`, `WINDOWSIZE_MIN=1`,
-- `WINDOWSIZE_MAX=65535`.
-- @table limits

--- Encode a read request.
-- @function rrq
-- @tparam string filename non-empty, no NUL
-- @tparam[opt="octet"] string mode sent as given (e.g. "octet", "netascii")
-- @tparam[opt] table opts options, see the module conventions
-- @treturn string packet, or `nil, reason` (empty filename or mode, NUL inside
--   a string, duplicate option, `"request longer than 512 bytes"`)

--- Encode a write request; same arguments and results as @{rrq}.
-- @function wrq

--- Encode a DATA packet.
-- @function data
-- @tparam integer block block number (taken modulo 65536)
-- @tparam string payload the bytes, or a larger buffer to cut them from
-- @tparam[opt=1] integer i first byte of `payload` to send (as in `string.sub`)
-- @tparam[opt=-1] integer j last byte of `payload` to send (as in `string.sub`)
-- @treturn string packet; raises if the payload is over 65464 bytes

--- Encode an ACK packet.
-- @function ack
-- @tparam integer block block number (taken modulo 65536)
-- @treturn string 4-byte packet

--- Encode an ERROR packet.
-- @function error
-- @tparam integer code 0..65535
-- @tparam[opt] string message defaults to `messages[code]` (or "" for unknown
--   codes); cut at its first NUL and to 507 bytes so the packet fits in 512
-- @treturn string packet

--- Encode an OACK packet.
-- @function oack
-- @tparam table opts at least one option
-- @treturn string packet, or `nil, reason` (as @{rrq}; also `"OACK without options"`,
--   `"OACK longer than 512 bytes"`)

--- Decode any packet, strictly.
-- Results by `op`:
--
-- * RRQ/WRQ: `{op, opcode, filename, mode, options, order}`; `mode` lowercased,
--   `options` maps lowercased names to value strings, `order` lists the lowercased
--   names in wire order. Trailing NUL padding after the last option is ignored.
-- * DATA: `{op, opcode, block, data}`
-- * ACK: `{op, opcode, block}`
-- * ERROR: `{op, opcode, code, message}` (bytes after the message's NUL are ignored)
-- * OACK: `{op, opcode, options, order}`
--
-- Reasons include `"packet too short"` (0–3 bytes), `"unknown opcode"`,
-- `"request longer than 512 bytes"`, `"unterminated filename"`, `"empty filename"`,
-- `"missing mode"`, `"unterminated mode"`, `"empty mode"`, `"unterminated option name"`,
-- `"empty option name"`, `"option without a value"`, `"unterminated option value"`,
-- `"duplicate option"`, `"DATA larger than the block size"`, `"ACK is not 4 bytes"`,
-- `"unterminated ERROR message"`, `"OACK longer than 512 bytes"`, `"OACK without options"`.
-- The mode is not checked against "octet"/"netascii": that is the server's call.
-- @function decode
-- @tparam string packet
-- @tparam[opt=512] integer blksize bound for a DATA payload (8..65464)
-- @treturn table packet fields, or `nil, reason`

--- Hot path: parse a DATA packet without creating a table.
-- @function parse_data
-- @tparam string packet
-- @tparam[opt=512] integer blksize negotiated block size (8..65464)
-- @treturn integer block
-- @treturn string payload (0..blksize bytes)
-- @return on anything else `nil, reason`; for a well-formed ERROR packet
--   `nil, "error", code, message`; for another valid packet
--   `nil, "unexpected OACK packet"` (etc.; use @{opcode} or @{decode} to handle it)

--- Hot path: parse an ACK packet without creating a table.
-- @function parse_ack
-- @tparam string packet
-- @treturn integer block, or the same failures as @{parse_data}

--- Hot path: @{parse_data} without copying the payload out.
-- @function check_data
-- @tparam string|buffer packet
-- @tparam integer blksize negotiated block size (8..65464)
-- @treturn integer block
-- @treturn integer payload size, or the same failures as @{parse_data}

--- Hot path: the DATA packet for the next `n` bytes of a Lua file, read
-- straight into the packet.
-- @function read_data
-- @tparam file file open for reading
-- @tparam integer block block number (taken modulo 65536)
-- @tparam integer n 1..65464
-- @tparam[opt] buffer buf an `lnet.buffer` of capacity >= n + 4: the packet is
--   left in it and it is returned instead of a string
-- @return packet (string or `buf`), payload size (< n at the end of the file);
--   or on a read error `nil, message, errno`, lnet's failure triple (message in
--   plain lowercase words, e.g. `"is a directory"`)

--- Hot path: write the payload of a DATA packet to a Lua file.
-- @function write_data
-- @tparam file file open for writing
-- @tparam string|buffer packet a DATA packet (raises otherwise)
-- @return `true`, or `nil, message, errno` (e.g. `"no space left on device"`, 28)

--- Peek at the opcode.
-- @function opcode
-- @tparam string packet
-- @treturn integer the first two bytes (any 16-bit value), or `nil, "packet too short"`

--- netascii: local bytes to wire bytes (LF → CR LF, CR → CR NUL).
-- Stateless (each byte maps on its own), so chunks may be encoded separately;
-- returns the input string itself when it holds no CR or LF. The output is up to
-- twice as long: a sender cuts blocks from the encoded stream, e.g. with
-- `data(block, encoded, i, i + blksize - 1)`.
-- @function netascii_encode
-- @tparam string chunk
-- @treturn string encoded

--- netascii: length that @{netascii_encode} would return (for `tsize`).
-- @function netascii_size
-- @tparam string chunk
-- @treturn integer

--- netascii: wire bytes to local bytes (CR LF → LF, CR NUL → CR, CR + other left as is).
-- Streaming: a CR at the end of a chunk is held back and reported as `pending`;
-- pass it to the next call. On the last call pass `final = true` (or call
-- `netascii_decode("", pending, true)`) to flush a held CR as is.
-- @function netascii_decode
-- @tparam string chunk
-- @tparam[opt=false] boolean pending from the previous call
-- @tparam[opt=false] boolean final this is the end of the stream
-- @treturn string decoded bytes
-- @treturn boolean pending

--- Strict option value to integer: decimal digits only (no sign, space, hex,
-- exponent), checked against `[min, max]`.
-- @function optint
-- @tparam string value
-- @tparam[opt=0] integer min
-- @tparam[opt=math.maxinteger] integer max
-- @treturn integer, or `nil, reason` (`"empty number"`, `"not a decimal number"`,
--   `"number out of range"`)

return require("lnet.core").tftp
