--- Python's `struct` module for Lua 5.4: pack and unpack binary records with
-- CPython's format language, sizes, padding, values and error texts.
--
-- Every function is implemented in C (`csrc/struct.c`); this module only
-- returns the `lnet.core` sub-table. See `docs/struct.md` for the format
-- language, the Lua mapping and the differences from `string.pack`.
--
-- Errors are raised as Lua errors whose message begins `struct.error: `
-- followed by CPython's text.
-- @module lnet.struct

--- Packs values into a string according to a format (cached compile).
-- @function pack
-- @tparam string fmt format, e.g. `"!HH"`
-- @param ... exactly as many values as the format describes
-- @treturn string the packed bytes

--- Unpacks a string of exactly `calcsize(fmt)` bytes.
-- @function unpack
-- @tparam string fmt format
-- @tparam string|lnet.buffer data the bytes (a string, or the bytes a buffer holds)
-- @return the values, one per item of the format

--- Unpacks `calcsize(fmt)` bytes starting at a 0-based offset.
-- @function unpack_from
-- @tparam string fmt format
-- @tparam string|lnet.buffer data the bytes (a string, or the bytes a buffer holds)
-- @tparam[opt=0] integer offset bytes to skip from the start; negative counts from the end
-- @return the values

--- Iterates over consecutive records, for a generic `for`.
-- `#data` must be a multiple of `calcsize(fmt)` (which must not be 0).
-- @function iter_unpack
-- @tparam string fmt format
-- @tparam string|lnet.buffer data the bytes (a string, or the bytes a buffer holds)
-- @treturn function an iterator returning one record's values per step

--- Size in bytes of the records described by a format.
-- @function calcsize
-- @tparam string fmt format
-- @treturn integer

--- Compiles a format once.
-- The object (a table with metatable `lnet.Struct`) has methods `pack(...)`, `unpack(data)`,
-- `unpack_from(data [, offset])`, `iter_unpack(data)`, bound to it, read-only fields `size`
-- and `format`, and `tostring` gives `Struct('fmt')`.
-- @function Struct
-- @tparam string fmt format
-- @treturn table the Struct object

--- Empties the cache of compiled formats used by the module-level functions.
-- @function _clearcache

--- Number of formats in that cache (at most 100; it is cleared whole when full).
-- @function _cachesize
-- @treturn integer

return require("lnet.core").struct
