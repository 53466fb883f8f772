// A PostgreSQL schema of its own for one test, on the server of the CTest
// fixture 'postgres' (scripts/pg-local.sh; found through
// $DET_TEST_POSTGRES_STATE or $DET_TEST_POSTGRES_URL), dropped with
// everything in it when the object goes away. url() is a det `db` URL
// whose search_path is that schema. Header-only; link libpq.
#ifndef DET_TESTS_TESTING_POSTGRES_SCHEMA_H_
#define DET_TESTS_TESTING_POSTGRES_SCHEMA_H_

#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <string>

namespace det::test {

class PostgresSchema {
 public:
  // The test server's URL, or "" when there is none.
  static std::string ServerUrl() {
    if (const char* url = std::getenv("DET_TEST_POSTGRES_URL"); url && *url) {
      return url;
    }
    const char* state = std::getenv("DET_TEST_POSTGRES_STATE");
    if (state == nullptr || *state == '\0') return "";
    std::ifstream in(state);
    std::string dir, url;
    std::getline(in, dir);
    std::getline(in, url);
    return url;
  }

  PostgresSchema() : server_(ServerUrl()) {
    if (server_.empty()) {
      error_ =
          "no PostgreSQL test server: run through ctest (fixture 'postgres') "
          "or set DET_TEST_POSTGRES_URL";
      return;
    }
    static std::atomic<int> counter{0};
    name_ =
        "det_it" + std::to_string(getpid()) + "_" + std::to_string(++counter);
    error_ = Exec("DROP SCHEMA IF EXISTS " + name_ +
                  " CASCADE; CREATE SCHEMA " + name_);
    if (error_.empty()) {
      url_ = server_ + (server_.find('?') == std::string::npos ? "?" : "&") +
             "options=-csearch_path%3D" + name_;
    }
  }
  ~PostgresSchema() {
    if (!url_.empty()) Exec("DROP SCHEMA IF EXISTS " + name_ + " CASCADE");
  }
  PostgresSchema(const PostgresSchema&) = delete;
  PostgresSchema& operator=(const PostgresSchema&) = delete;

  // Empty when the schema exists; else why not.
  const std::string& error() const { return error_; }
  const std::string& url() const { return url_; }
  const std::string& name() const { return name_; }

  // Runs `sql` on the server with this schema first in the search_path;
  // the first value of the first row ("" if none), or "ERROR: ..." .
  std::string Query(const std::string& sql) {
    std::string out;
    std::string err = Exec("SET search_path TO " + name_ + "; " + sql, &out);
    return err.empty() ? out : "ERROR: " + err;
  }

 private:
  std::string Exec(const std::string& sql, std::string* first = nullptr) {
    PGconn* c = PQconnectdb(server_.c_str());
    std::string err;
    if (PQstatus(c) != CONNECTION_OK) {
      err = PQerrorMessage(c);
    } else {
      PGresult* r = PQexec(c, sql.c_str());
      ExecStatusType st = PQresultStatus(r);
      if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        err = PQresultErrorMessage(r);
      } else if (first != nullptr && st == PGRES_TUPLES_OK &&
                 PQntuples(r) > 0) {
        *first = PQgetvalue(r, 0, 0);
      }
      PQclear(r);
    }
    PQfinish(c);
    return err;
  }

  std::string server_, name_, url_, error_;
};

}  // namespace det::test

#endif  // DET_TESTS_TESTING_POSTGRES_SCHEMA_H_
