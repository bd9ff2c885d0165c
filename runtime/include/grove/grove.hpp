// grove/grove.hpp — everything grove offers, in one include.
#pragma once

#include <grove/error.hpp>
#include <grove/greenlet.hpp>
#include <grove/stack.hpp>
