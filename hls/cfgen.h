// cfgen HLS header library: every unit (include this or the single headers).
#ifndef CFGEN_H
#define CFGEN_H
#include "cf_common.h"
#include "cf_activation.h"
#include "cf_axis.h"
#include "cf_dwc.h"
#include "cf_fork.h"
#include "cf_globalsum.h"
#include "cf_mvau.h"
#include "cf_pool.h"
#include "cf_resadd.h"
#include "cf_scalemac.h"
#include "cf_swg.h"
#include "cf_widen.h"
#include "cf_wload.h"
#endif
