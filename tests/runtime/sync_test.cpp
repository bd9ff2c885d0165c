// sync_test.cpp — placeholder, being written.
#include "../support.hpp"
