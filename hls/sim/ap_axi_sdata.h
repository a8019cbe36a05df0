// Minimal ap_axiu<D, U, TI, TD> (AXI4-Stream beat with side channels) for C simulation
// with g++ (cfgen). Vitis HLS uses its own ap_axi_sdata.h. Only the fields cfgen uses
// matter: data, keep, strb, last (user/id/dest are present, at least 1 bit wide).
#ifndef CF_SIM_AP_AXI_SDATA_H
#define CF_SIM_AP_AXI_SDATA_H

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Waggressive-loop-optimizations"
#include <ap_int.h>
#pragma GCC diagnostic pop

template <int D, int U, int TI, int TD> struct ap_axiu {
  ap_uint<D> data;
  ap_uint<(D + 7) / 8> keep;
  ap_uint<(D + 7) / 8> strb;
  ap_uint<(U > 0) ? U : 1> user;
  ap_uint<1> last;
  ap_uint<(TI > 0) ? TI : 1> id;
  ap_uint<(TD > 0) ? TD : 1> dest;
};

template <int D, int U, int TI, int TD> struct ap_axis {
  ap_int<D> data;
  ap_uint<(D + 7) / 8> keep;
  ap_uint<(D + 7) / 8> strb;
  ap_uint<(U > 0) ? U : 1> user;
  ap_uint<1> last;
  ap_uint<(TI > 0) ? TI : 1> id;
  ap_uint<(TD > 0) ? TD : 1> dest;
};

#endif  // CF_SIM_AP_AXI_SDATA_H
