/* poller.c - placeholder until the poller concept lands (being written now). */
#include "lnet.h"

void lnet_open_poller(lua_State *L) {
  (void)L;
}
