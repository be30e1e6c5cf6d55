/* struct.c - placeholder until the struct concept lands (being written now). */
#include "lnet.h"

void lnet_open_struct(lua_State *L) {
  (void)L;
}
