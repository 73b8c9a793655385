// troupe::mpi_check (CMake target troupe::mpi_check): the MPI functions below, defined in
// the program itself, check the calling thread against the rule of troupe's MPI mode and
// then call their PMPI_ names (the MPI profiling interface). Link it into debug builds:
//
//   target_link_libraries(app PRIVATE troupe::troupe troupe::mpi_check)
//
// Every call of the program and of troupe (a static library: its calls bind here too) is
// checked: in MpiMode::Serialized the caller must hold troupe's MPI token (troupe::with_mpi),
// in MpiMode::Funneled at FUNNELED or SINGLE it must be MPI's main thread. A violation is
// reported on stderr and aborts, or is counted (troupe::set_mpi_check_action,
// troupe::mpi_check_report); docs/thread-levels.md has the rules.
#include <mpi.h>

#include "troupe/runtime/mpi_token.hpp"

namespace {
bool is_main() {
  int flag = 1;
  PMPI_Is_thread_main(&flag);
  return flag != 0;
}
void check(const char* name) {
  if (troupe::detail::mpi_rule() == 0) return;
  troupe::detail::check_mpi_call(name, troupe::detail::mpi_rule() == 2 ? is_main() : true);
}
}  // namespace

extern "C" {

int MPI_Send(const void* b, int n, MPI_Datatype t, int d, int tag, MPI_Comm c) {
  check("MPI_Send");
  return PMPI_Send(b, n, t, d, tag, c);
}

int MPI_Recv(void* b, int n, MPI_Datatype t, int s, int tag, MPI_Comm c, MPI_Status* st) {
  check("MPI_Recv");
  return PMPI_Recv(b, n, t, s, tag, c, st);
}

int MPI_Isend(const void* b, int n, MPI_Datatype t, int d, int tag, MPI_Comm c, MPI_Request* r) {
  check("MPI_Isend");
  return PMPI_Isend(b, n, t, d, tag, c, r);
}

int MPI_Irecv(void* b, int n, MPI_Datatype t, int s, int tag, MPI_Comm c, MPI_Request* r) {
  check("MPI_Irecv");
  return PMPI_Irecv(b, n, t, s, tag, c, r);
}

int MPI_Sendrecv(const void* sb, int sn, MPI_Datatype stype, int d, int stag, void* rb, int rn, MPI_Datatype rtype,
                 int s, int rtag, MPI_Comm c, MPI_Status* st) {
  check("MPI_Sendrecv");
  return PMPI_Sendrecv(sb, sn, stype, d, stag, rb, rn, rtype, s, rtag, c, st);
}

int MPI_Probe(int s, int tag, MPI_Comm c, MPI_Status* st) {
  check("MPI_Probe");
  return PMPI_Probe(s, tag, c, st);
}

int MPI_Iprobe(int s, int tag, MPI_Comm c, int* f, MPI_Status* st) {
  check("MPI_Iprobe");
  return PMPI_Iprobe(s, tag, c, f, st);
}

int MPI_Improbe(int s, int tag, MPI_Comm c, int* f, MPI_Message* m, MPI_Status* st) {
  check("MPI_Improbe");
  return PMPI_Improbe(s, tag, c, f, m, st);
}

int MPI_Mrecv(void* b, int n, MPI_Datatype t, MPI_Message* m, MPI_Status* st) {
  check("MPI_Mrecv");
  return PMPI_Mrecv(b, n, t, m, st);
}

int MPI_Test(MPI_Request* r, int* f, MPI_Status* st) {
  check("MPI_Test");
  return PMPI_Test(r, f, st);
}

int MPI_Testall(int n, MPI_Request* r, int* f, MPI_Status* st) {
  check("MPI_Testall");
  return PMPI_Testall(n, r, f, st);
}

int MPI_Wait(MPI_Request* r, MPI_Status* st) {
  check("MPI_Wait");
  return PMPI_Wait(r, st);
}

int MPI_Waitall(int n, MPI_Request* r, MPI_Status* st) {
  check("MPI_Waitall");
  return PMPI_Waitall(n, r, st);
}

int MPI_Barrier(MPI_Comm c) {
  check("MPI_Barrier");
  return PMPI_Barrier(c);
}

int MPI_Ibarrier(MPI_Comm c, MPI_Request* r) {
  check("MPI_Ibarrier");
  return PMPI_Ibarrier(c, r);
}

int MPI_Bcast(void* b, int n, MPI_Datatype t, int root, MPI_Comm c) {
  check("MPI_Bcast");
  return PMPI_Bcast(b, n, t, root, c);
}

int MPI_Reduce(const void* s, void* r, int n, MPI_Datatype t, MPI_Op op, int root, MPI_Comm c) {
  check("MPI_Reduce");
  return PMPI_Reduce(s, r, n, t, op, root, c);
}

int MPI_Allreduce(const void* s, void* r, int n, MPI_Datatype t, MPI_Op op, MPI_Comm c) {
  check("MPI_Allreduce");
  return PMPI_Allreduce(s, r, n, t, op, c);
}

int MPI_Iallreduce(const void* s, void* r, int n, MPI_Datatype t, MPI_Op op, MPI_Comm c, MPI_Request* q) {
  check("MPI_Iallreduce");
  return PMPI_Iallreduce(s, r, n, t, op, c, q);
}

int MPI_Allgather(const void* s, int sn, MPI_Datatype st, void* r, int rn, MPI_Datatype rt, MPI_Comm c) {
  check("MPI_Allgather");
  return PMPI_Allgather(s, sn, st, r, rn, rt, c);
}

int MPI_Gather(const void* s, int sn, MPI_Datatype st, void* r, int rn, MPI_Datatype rt, int root, MPI_Comm c) {
  check("MPI_Gather");
  return PMPI_Gather(s, sn, st, r, rn, rt, root, c);
}

int MPI_Get(void* o, int on, MPI_Datatype ot, int tr, MPI_Aint td, int tn, MPI_Datatype tt, MPI_Win w) {
  check("MPI_Get");
  return PMPI_Get(o, on, ot, tr, td, tn, tt, w);
}

int MPI_Put(const void* o, int on, MPI_Datatype ot, int tr, MPI_Aint td, int tn, MPI_Datatype tt, MPI_Win w) {
  check("MPI_Put");
  return PMPI_Put(o, on, ot, tr, td, tn, tt, w);
}

int MPI_Fetch_and_op(const void* o, void* r, MPI_Datatype t, int tr, MPI_Aint td, MPI_Op op, MPI_Win w) {
  check("MPI_Fetch_and_op");
  return PMPI_Fetch_and_op(o, r, t, tr, td, op, w);
}

int MPI_Win_flush(int tr, MPI_Win w) {
  check("MPI_Win_flush");
  return PMPI_Win_flush(tr, w);
}

int MPI_Comm_dup(MPI_Comm c, MPI_Comm* out) {
  check("MPI_Comm_dup");
  return PMPI_Comm_dup(c, out);
}

int MPI_Comm_free(MPI_Comm* c) {
  check("MPI_Comm_free");
  return PMPI_Comm_free(c);
}

int MPI_Comm_idup(MPI_Comm c, MPI_Comm* out, MPI_Request* r) {
  check("MPI_Comm_idup");
  return PMPI_Comm_idup(c, out, r);
}

int MPI_Comm_split_type(MPI_Comm c, int type, int key, MPI_Info info, MPI_Comm* out) {
  check("MPI_Comm_split_type");
  return PMPI_Comm_split_type(c, type, key, info, out);
}

int MPI_Comm_rank(MPI_Comm c, int* r) {
  check("MPI_Comm_rank");
  return PMPI_Comm_rank(c, r);
}

int MPI_Comm_size(MPI_Comm c, int* s) {
  check("MPI_Comm_size");
  return PMPI_Comm_size(c, s);
}

int MPI_Request_free(MPI_Request* r) {
  check("MPI_Request_free");
  return PMPI_Request_free(r);
}

int MPI_Cancel(MPI_Request* r) {
  check("MPI_Cancel");
  return PMPI_Cancel(r);
}

int MPI_Get_elements_x(const MPI_Status* st, MPI_Datatype t, MPI_Count* n) {
  check("MPI_Get_elements_x");
  return PMPI_Get_elements_x(st, t, n);
}

}  // extern "C"
