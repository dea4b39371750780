-- name: CreateAccount :exec
INSERT INTO accounts (id, owner, balance) VALUES (?, ?, ?);

-- name: GetAccount :one
SELECT id, owner, balance FROM accounts
WHERE id = ?;

-- name: AddToBalance :exec
UPDATE accounts SET balance = balance + ? WHERE id = ?;

-- name: TotalBalance :one
SELECT CAST(COALESCE(SUM(balance), 0) AS INTEGER) AS total FROM accounts;
